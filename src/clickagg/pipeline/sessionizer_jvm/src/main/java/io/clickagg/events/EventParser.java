package io.clickagg.events;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;

/**
 * The event contract's accepting half in the JVM: a line that certainly keeps the contract of
 * clickagg/domain/events.py becomes its event's fields; every other line is marked
 * {@code deferred} and the Python parser (the specification) gives it its event or its
 * dead-letter reason. So every reason comes from Python, and the JVM only has to be right about
 * what it accepts: tests/spark/test_jvm_parser.py requires the same archive rows from both.
 *
 * <p>Input rows: value (binary), arrival_source (string), arrival_split (long), in file order
 * within a split. Two passes over the same lines, which decide alike (the clock is the
 * configuration's {@code now_ms}): {@link #survey} tells the driver what it must compute in
 * Python (the batch's distinct user agents and links to enrich, the deferred lines, the newest
 * event time), and {@link ArchiveRows#rows} turns the accepted lines into archive rows.
 */
public final class EventParser {
  private static final Pattern ISO_TS = Pattern.compile(
      "([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\\.([0-9]{1,9}))?"
      + "(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2}))");
  /** Python's str.isspace() among the characters below 0x80. */
  private static final String ASCII_SPACE = " \t\n\u000b\u000c\r\u001c\u001d\u001e\u001f";
  private static final int NO_INDEX = -1;
  /** Ints longer than this are left to Python (its bound is the contract's, 100 digits). */
  private static final int LONG_DIGITS = 18;
  private static final int EXACT_DOUBLE_DIGITS = 15;

  private EventParser() {}

  /** What the driver needs before the archive rows: see {@link Survey}. */
  public static Dataset<Row> survey(Dataset<Row> lines, String configText) {
    return lines.mapPartitions(new Survey(Config.parse(configText)), Encoders.row(Survey.OUTPUT));
  }

  /** The parser's settings, from clickagg.pipeline.jvm_parse.config_text (one home for rules). */
  static final class Config implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    int maxLineBytes;
    int rawKeptBytes;
    long maxFutureMs;
    int maxIntegerDigits;
    long nowMs;
    int deferredKeptLines;
    long deferredKeptBytes;
    final List<String> strings = new ArrayList<>();
    final Set<String> required = new HashSet<>();
    final Set<String> dimensionValueFields = new HashSet<>();
    final Set<String> reserved = new HashSet<>();

    static Config parse(String text) {
      Config config = new Config();
      for (String line : text.split("\n")) {
        String[] parts = line.split("\t", -1);
        List<String> rest = Arrays.asList(parts).subList(1, parts.length);
        switch (parts[0]) {
          case "max_line_bytes" -> config.maxLineBytes = Integer.parseInt(parts[1]);
          case "raw_kept_bytes" -> config.rawKeptBytes = Integer.parseInt(parts[1]);
          case "max_future_ms" -> config.maxFutureMs = Long.parseLong(parts[1]);
          case "max_integer_digits" -> config.maxIntegerDigits = Integer.parseInt(parts[1]);
          case "now_ms" -> config.nowMs = Long.parseLong(parts[1]);
          case "deferred_kept_lines" -> config.deferredKeptLines = Integer.parseInt(parts[1]);
          case "deferred_kept_bytes" -> config.deferredKeptBytes = Long.parseLong(parts[1]);
          case "strings" -> config.strings.addAll(rest);
          case "required" -> config.required.addAll(rest);
          case "dimension_value_fields" -> config.dimensionValueFields.addAll(rest);
          case "reserved" -> config.reserved.addAll(rest);
          default -> throw new IllegalArgumentException("unknown parser setting: " + parts[0]);
        }
      }
      return config;
    }
  }

  /** One partition's parser: counts lines per split for their offsets. */
  static final class Lines {
    private final Config config;
    private final JsonFactory json = JsonFactory.builder()
        .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();
    private final Map<String, Integer> index = new HashMap<>();
    private final Map<String, Long> seen = new HashMap<>();
    private String lastSource;
    private long lastSplit;
    private long lastCount;

    Lines(Config config) {
      this.config = config;
      for (int i = 0; i < config.strings.size(); i++) {
        index.put(config.strings.get(i), i);
      }
    }

    /** The line's event fields (strings, revenue, ts_ms), or null: Python decides. */
    Object[] fields(byte[] value) {
      Object[] out = new Object[config.strings.size() + 2];
      return accept(value, out) ? out : null;
    }

    /** The line's offset: its split's start plus its index in the split. */
    long offset(String source, long split) {
      // Lines of a split come together: the map is read when the split changes, not per line.
      if (!source.equals(lastSource) || split != lastSplit) {
        if (lastSource != null) {
          seen.put(lastSource + "\u0000" + lastSplit, lastCount);
        }
        lastSource = source;
        lastSplit = split;
        lastCount = seen.getOrDefault(source + "\u0000" + split, 0L);
      }
      return split + lastCount++;
    }

    /** Fills the event's fields into out and answers true, or answers false (Python decides). */
    private boolean accept(byte[] line, Object[] out) {
      if (line.length == 0 || line.length > config.maxLineBytes) {
        return false;
      }
      String text;
      try {
        text = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(line)).toString();
      } catch (CharacterCodingException e) {
        return false;
      }
      if (text.charAt(0) == '\uFEFF') {  // Python's json refuses a byte order mark
        return false;
      }
      int width = config.strings.size();
      boolean[] present = new boolean[width];
      boolean tsSeen = false;
      try (JsonParser parser = json.createParser(text)) {
        if (parser.nextToken() != JsonToken.START_OBJECT) {
          return false;
        }
        for (JsonToken token = parser.nextToken(); token != JsonToken.END_OBJECT;
             token = parser.nextToken()) {
          String name = parser.currentName();
          JsonToken value = parser.nextToken();
          if (value == JsonToken.START_OBJECT || value == JsonToken.START_ARRAY) {
            return false;  // nested values: depth and duplicates inside are Python's to judge
          }
          if (value == JsonToken.VALUE_NUMBER_INT && digits(parser.getText())
              > config.maxIntegerDigits) {
            return false;
          }
          Integer at = index.get(name);
          if (at != null) {
            if (value == JsonToken.VALUE_STRING) {
              out[at] = parser.getText();
            } else if (value != JsonToken.VALUE_NULL) {
              return false;
            }
            present[at] = true;
          } else if ("ts".equals(name)) {
            Long ts = timestamp(parser, value);
            if (ts == null) {
              return false;
            }
            out[width + 1] = ts;
            tsSeen = true;
          } else if ("revenue".equals(name)) {
            if (!revenue(parser, value, out, width)) {
              return false;
            }
          }
        }
        if (parser.nextToken() != null) {
          return false;
        }
      } catch (IOException | RuntimeException e) {
        return false;
      }
      if (!tsSeen) {
        return false;
      }
      long ts = (Long) out[width + 1];
      if (ts < 0 || ts > config.nowMs + config.maxFutureMs) {
        return false;
      }
      for (int i = 0; i < width; i++) {
        String name = config.strings.get(i);
        String value = (String) out[i];
        if (value == null) {
          if (config.required.contains(name)) {
            return false;
          }
          continue;
        }
        Boolean blank = blank(value);
        if (blank == null || hasLoneSurrogate(value)) {
          return false;
        }
        if (blank) {
          if (config.required.contains(name)) {
            return false;
          }
          out[i] = null;
        } else if (config.dimensionValueFields.contains(name) && config.reserved.contains(value)) {
          return false;
        }
      }
      return true;
    }

    private boolean revenue(JsonParser parser, JsonToken value, Object[] out, int width)
        throws IOException {
      double amount;
      if (value == JsonToken.VALUE_NULL) {
        out[width] = null;
        return true;
      } else if (value == JsonToken.VALUE_NUMBER_INT && digits(parser.getText())
          <= EXACT_DOUBLE_DIGITS) {
        amount = (double) parser.getLongValue();
      } else if (value == JsonToken.VALUE_NUMBER_FLOAT) {
        amount = Double.parseDouble(parser.getText());
      } else {
        return false;
      }
      if (!Double.isFinite(amount) || amount < 0) {
        return false;
      }
      out[width] = amount;
      return true;
    }
  }

  private static int digits(String number) {
    return number.startsWith("-") ? number.length() - 1 : number.length();
  }

  /** Epoch milliseconds of an integer or an RFC 3339 string; null: Python decides. */
  static Long timestamp(JsonParser parser, JsonToken value) throws IOException {
    if (value == JsonToken.VALUE_NUMBER_INT) {
      return digits(parser.getText()) <= LONG_DIGITS ? parser.getLongValue() : null;
    }
    return value == JsonToken.VALUE_STRING ? isoMs(parser.getText()) : null;
  }

  /** What Python's fromisoformat, after cutting the fraction to 6 digits, gives; else null. */
  static Long isoMs(String text) {
    Matcher m = ISO_TS.matcher(text);
    if (!m.matches()) {
      return null;
    }
    int year = Integer.parseInt(m.group(1));
    int month = Integer.parseInt(m.group(2));
    int day = Integer.parseInt(m.group(3));
    int hour = Integer.parseInt(m.group(4));
    int minute = Integer.parseInt(m.group(5));
    int second = Integer.parseInt(m.group(6));
    if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59
        || second > 59 || day > LocalDate.of(year, month, 1).lengthOfMonth()) {
      return null;
    }
    String fraction = m.group(7) == null ? "" : m.group(7);
    String micros = (fraction + "000000").substring(0, 6);
    long offsetMinutes = 0;
    if (m.group(8) != null) {
      int offsetHours = Integer.parseInt(m.group(9));
      int offsetMins = Integer.parseInt(m.group(10));
      if (offsetHours > 23 || offsetMins > 59) {
        return null;
      }
      offsetMinutes = (offsetHours * 60L + offsetMins) * ("-".equals(m.group(8)) ? -1 : 1);
    }
    long seconds = LocalDate.of(year, month, day).toEpochDay() * 86_400L
        + hour * 3_600L + minute * 60L + second - offsetMinutes * 60L;
    return Math.floorDiv(seconds * 1_000_000L + Long.parseLong(micros), 1_000L);
  }

  /** Python's not value.strip(): true or false where certain, null where Python must say. */
  static Boolean blank(String value) {
    boolean unsure = false;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c > 0x20 && c < 0x7f) {
        return false;
      }
      if (ASCII_SPACE.indexOf(c) < 0) {
        unsure = true;
      }
    }
    return unsure ? null : true;
  }

  static boolean hasLoneSurrogate(String value) {
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= value.length() || !Character.isLowSurrogate(value.charAt(i + 1))) {
          return true;
        }
        i++;
      } else if (Character.isLowSurrogate(c)) {
        return true;
      }
    }
    return false;
  }
}

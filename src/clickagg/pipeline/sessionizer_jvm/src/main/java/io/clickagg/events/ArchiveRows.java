package io.clickagg.events;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * The second pass: the lines the JVM accepts as archive rows (clickagg/pipeline/archive.py),
 * enriched through the lookup tables the driver built with domain/enrich.py from {@link
 * Survey}'s values, and marked {@code too_late} against the batch's limit, in one map with no
 * join and no cache. Deferred lines are skipped: the driver parsed them with Python.
 */
public final class ArchiveRows implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;
  private static final DateTimeFormatter ISO =
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss'Z'");
  private final EventParser.Config config;
  private final Marking marking;
  private final Survey.Fields at;
  private final HashMap<String, Object[]> agents;
  private final HashMap<List<String>, String[]> links;

  private ArchiveRows(EventParser.Config config, Marking marking, Tables tables) {
    this.config = config;
    this.marking = marking;
    this.at = new Survey.Fields(config);
    this.agents = tables.agents;
    this.links = tables.links;
  }

  /** Archive rows of the accepted lines; configText as for the survey plus the marking. */
  public static Dataset<Row> rows(Dataset<Row> lines, String configText, String tablesJson) {
    Marking marking = Marking.parse(configText);
    ArchiveRows map = new ArchiveRows(
        EventParser.Config.parse(marking.parserText), marking, Tables.parse(tablesJson));
    return lines.mapPartitions(map, Encoders.row(marking.schema));
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    EventParser.Lines lines = new EventParser.Lines(config);
    return new Iterator<>() {
      private Row next;

      @Override
      public boolean hasNext() {
        while (next == null && input.hasNext()) {
          next = row(lines, input.next());
        }
        return next != null;
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        Row row = next;
        next = null;
        return row;
      }
    };
  }

  private Row row(EventParser.Lines lines, Row line) {
    byte[] value = line.isNullAt(0) ? new byte[0] : (byte[]) line.get(0);
    String source = line.getString(1);
    long offset = lines.offset(source, line.getLong(2));
    Object[] fields = lines.fields(value);
    if (fields == null) {
      return null;
    }
    Marking m = marking;
    Object[] out = new Object[m.width];
    out[m.arrivalSource] = source;
    out[m.arrivalOffset] = offset;
    out[m.arrivalMs] = m.arrivalMs_;
    out[m.arrivalNewestMs] = m.arrivalNewestMs_;
    out[m.arrivalBatch] = m.arrivalBatch_;
    long ts = (Long) fields[at.ts];
    if (m.tooLateLimit != null && ts < m.tooLateLimit) {
      out[m.reason] = m.tooLateBefore + iso(ts) + m.tooLateAfter;
      out[m.raw] = value.length <= config.rawKeptBytes
          ? value : Arrays.copyOf(value, config.rawKeptBytes);
      out[m.kind] = m.deadLetterKind;
      partition(out, m.arrivalMs_);
      return RowFactory.create(out);
    }
    enrich(fields);
    System.arraycopy(fields, 0, out, 0, at.ts + 1);  // the strings, revenue, ts_ms
    String agent = (String) fields[at.userAgent];
    out[m.bot] = agent != null && (Boolean) lookup(agents, agent, "user agent")[2];
    out[m.kind] = m.eventKind;
    partition(out, ts);
    return RowFactory.create(out);
  }

  /** domain/enrich.py's enrich: derived values where the event names none. */
  private void enrich(Object[] fields) {
    if (at.needsLinks(fields)) {
      String[] facts = lookup(
          links, Arrays.asList((String) fields[at.url], (String) fields[at.referrer]), "link");
      fill(fields, at.channel, facts[0]);
      fill(fields, at.campaign, facts[1]);
      fill(fields, at.page, facts[2]);
    }
    String agent = (String) fields[at.userAgent];
    if (agent != null) {
      Object[] facts = lookup(agents, agent, "user agent");
      fill(fields, at.deviceClass, facts[0]);
      fill(fields, at.browserFamily, facts[1]);
    }
  }

  private static void fill(Object[] fields, int index, Object value) {
    if (fields[index] == null) {
      fields[index] = value;
    }
  }

  private static <K, V> V lookup(Map<K, V> table, K key, String what) {
    V found = table.get(key);
    if (found == null) {
      // The survey saw every accepted line with the same clock: a miss is a bug, not data.
      throw new IllegalStateException("no " + what + " entry from the survey for " + key);
    }
    return found;
  }

  /** Events by their time, dead letters by their arrival (UTC). */
  private void partition(Object[] out, long atMs) {
    LocalDateTime at = LocalDateTime.ofEpochSecond(Math.floorDiv(atMs, 1000L), 0, ZoneOffset.UTC);
    out[marking.date] = at.toLocalDate().toString();
    out[marking.hour] = at.getHour();
  }

  private static String iso(long ms) {
    return LocalDateTime.ofEpochSecond(Math.floorDiv(ms, 1000L), 0, ZoneOffset.UTC).format(ISO);
  }

  /** The batch's settings and the archive's layout, from clickagg.pipeline.jvm_parse. */
  static final class Marking implements Serializable {
    private static final long serialVersionUID = 1L;
    String parserText;
    StructType schema;
    int width;
    int reason;
    int raw;
    int bot;
    int kind;
    int date;
    int hour;
    int arrivalSource;
    int arrivalOffset;
    int arrivalMs;
    int arrivalNewestMs;
    int arrivalBatch;
    long arrivalMs_;
    Long arrivalNewestMs_;
    long arrivalBatch_;
    Long tooLateLimit;
    String tooLateBefore;
    String tooLateAfter;
    String eventKind;
    String deadLetterKind;

    static Marking parse(String text) {
      Marking m = new Marking();
      StringBuilder parser = new StringBuilder();
      for (String line : text.split("\n")) {
        String[] parts = line.split("\t", -1);
        switch (parts[0]) {
          case "archive_schema" -> m.schema = (StructType) DataType.fromJson(parts[1]);
          case "arrival_ms" -> m.arrivalMs_ = Long.parseLong(parts[1]);
          case "arrival_newest_ms" -> m.arrivalNewestMs_ = optional(parts[1]);
          case "arrival_batch" -> m.arrivalBatch_ = Long.parseLong(parts[1]);
          case "too_late_limit" -> m.tooLateLimit = optional(parts[1]);
          case "too_late_frame" -> {
            m.tooLateBefore = parts[1];
            m.tooLateAfter = parts[2];
          }
          case "kinds" -> {
            m.eventKind = parts[1];
            m.deadLetterKind = parts[2];
          }
          default -> parser.append(line).append('\n');
        }
      }
      m.parserText = parser.toString().strip();
      List<String> names = Arrays.asList(m.schema.fieldNames());
      m.width = names.size();
      m.reason = names.indexOf("reason");
      m.raw = names.indexOf("raw");
      m.bot = names.indexOf("bot");
      m.kind = names.indexOf("kind");
      m.date = names.indexOf("date");
      m.hour = names.indexOf("hour");
      m.arrivalSource = names.indexOf("arrival_source");
      m.arrivalOffset = names.indexOf("arrival_offset");
      m.arrivalMs = names.indexOf("arrival_ms");
      m.arrivalNewestMs = names.indexOf("arrival_newest_ms");
      m.arrivalBatch = names.indexOf("arrival_batch");
      return m;
    }

    private static Long optional(String text) {
      return text.isEmpty() ? null : Long.valueOf(text);
    }
  }

  /** The lookup tables: {"agents": [[agent, device, browser, bot]], "links": [[url, referrer,
   * channel, campaign, page]]}, nulls as JSON null. */
  static final class Tables {
    final HashMap<String, Object[]> agents = new HashMap<>();
    final HashMap<List<String>, String[]> links = new HashMap<>();

    static Tables parse(String json) {
      Tables tables = new Tables();
      try (JsonParser parser = new JsonFactory().createParser(json)) {
        parser.nextToken();  // {
        while (parser.nextToken() == JsonToken.FIELD_NAME) {
          String name = parser.currentName();
          parser.nextToken();  // [
          while (parser.nextToken() == JsonToken.START_ARRAY) {
            List<Object> entry = new ArrayList<>();
            for (JsonToken t = parser.nextToken(); t != JsonToken.END_ARRAY; t = parser.nextToken()) {
              entry.add(switch (t) {
                case VALUE_NULL -> null;
                case VALUE_TRUE -> Boolean.TRUE;
                case VALUE_FALSE -> Boolean.FALSE;
                default -> parser.getText();
              });
            }
            if ("agents".equals(name)) {
              tables.agents.put((String) entry.get(0), entry.subList(1, 4).toArray());
            } else {
              tables.links.put(Arrays.asList((String) entry.get(0), (String) entry.get(1)),
                  entry.subList(2, 5).toArray(new String[0]));
            }
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException("the enrichment tables are no JSON", e);
      }
      return tables;
    }
  }
}

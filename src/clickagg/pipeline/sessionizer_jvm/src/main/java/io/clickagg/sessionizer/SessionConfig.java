package io.clickagg.sessionizer;

import java.io.Serializable;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the sessionizer needs to know, all of it derived by Python from the spec and from
 * clickagg.domain (one source of truth): lines of tab-separated key and values.
 */
public final class SessionConfig implements Serializable {
  private static final long serialVersionUID = 1L;

  final long granularityMs; // 0 for a calendar granularity
  final int granularityMonths;
  final long weekOriginMs;
  final long timeoutMs;
  final long visitorMemoryMs;
  final long engagedMs;
  final String[] fields; // the additive fact fields, in output order
  final String[] dimensionFields;
  final boolean[] eventScoped; // an event-scoped dimension that is not visitor_type
  final boolean[] visitorType;
  final Map<String, Integer> typeCounters; // event type -> index of its counter field
  final String pageView;
  final String order;
  final String addToCart;
  final String newVisitor;
  final String returningVisitor;
  final String missing;
  final int events;
  final int revenue;
  final int entries;
  final int exits;
  final int visits;
  final int newVisits;
  final int visitsWithOrder;
  final int closedVisits;
  final int bounces;
  final int engagedVisits;
  final int durationSum;
  final int pageViewsSum;
  final int visitsWithCart;
  final int visitsWithCartWithoutOrder;

  private SessionConfig(Map<String, List<String>> lines, List<String[]> dimensions,
                        Map<String, String> counters) {
    long granularitySeconds = longOf(lines, "granularity_seconds");
    granularityMonths = (int) longOf(lines, "granularity_months");
    granularityMs = granularitySeconds * 1000;
    long week = 7L * 24 * 3600;
    weekOriginMs = granularitySeconds > 0 && granularitySeconds % week == 0 ? -3L * 86_400_000 : 0;
    timeoutMs = longOf(lines, "timeout_ms");
    visitorMemoryMs = longOf(lines, "visitor_memory_ms");
    engagedMs = longOf(lines, "engaged_ms");
    fields = required(lines, "fields").toArray(new String[0]);
    dimensionFields = new String[dimensions.size()];
    eventScoped = new boolean[dimensions.size()];
    visitorType = new boolean[dimensions.size()];
    String visitorTypeField = one(lines, "visitor_type_field");
    for (int i = 0; i < dimensions.size(); i++) {
      String[] d = dimensions.get(i);
      dimensionFields[i] = d[0];
      visitorType[i] = d[0].equals(visitorTypeField);
      eventScoped[i] = d[1].equals("event") && !visitorType[i];
    }
    typeCounters = new HashMap<>();
    counters.forEach((type, field) -> typeCounters.put(type, index(field)));
    pageView = one(lines, "page_view");
    order = one(lines, "order");
    addToCart = one(lines, "add_to_cart");
    newVisitor = one(lines, "new_visitor");
    returningVisitor = one(lines, "returning_visitor");
    missing = one(lines, "missing");
    events = index("events");
    revenue = index("revenue");
    entries = index("entries");
    exits = index("exits");
    visits = index("visits");
    newVisits = index("new_visits");
    visitsWithOrder = index("visits_with_order");
    closedVisits = index("closed_visits");
    bounces = index("bounces");
    engagedVisits = index("engaged_visits");
    durationSum = index("visit_duration_seconds_sum");
    pageViewsSum = index("visit_page_views_sum");
    visitsWithCart = index("visits_with_cart");
    visitsWithCartWithoutOrder = index("visits_with_cart_without_order");
  }

  /** Reads the text clickagg.pipeline.jvm_sessionizer.config_text writes. */
  public static SessionConfig parse(String text) {
    Map<String, List<String>> lines = new HashMap<>();
    List<String[]> dimensions = new ArrayList<>();
    Map<String, String> counters = new HashMap<>();
    for (String line : text.split("\n")) {
      if (line.isEmpty()) {
        continue;
      }
      String[] parts = line.split("\t", -1);
      List<String> values = List.of(parts).subList(1, parts.length);
      switch (parts[0]) {
        case "dimension" -> dimensions.add(new String[] {values.get(0), values.get(1)});
        case "counter" -> counters.put(values.get(0), values.get(1));
        default -> lines.put(parts[0], values);
      }
    }
    return new SessionConfig(lines, dimensions, counters);
  }

  int dimensionCount() {
    return dimensionFields.length;
  }

  /** The start (epoch ms, UTC) of the bucket holding tsMs: domain/buckets.floor. */
  long floor(long tsMs) {
    if (granularityMonths > 0) {
      ZonedDateTime stamp = Instant.ofEpochMilli(tsMs).atZone(ZoneOffset.UTC);
      long index = (stamp.getYear() - 1970L) * 12 + stamp.getMonthValue() - 1;
      index -= Math.floorMod(index, granularityMonths);
      LocalDate start = LocalDate.of((int) (1970 + Math.floorDiv(index, 12)),
          Math.floorMod((int) index, 12) + 1, 1);
      return start.atStartOfDay(ZoneOffset.UTC).toInstant().toEpochMilli();
    }
    return Math.floorDiv(tsMs - weekOriginMs, granularityMs) * granularityMs + weekOriginMs;
  }

  /** A dimension's stored value: domain/dimensions.value_or_missing (Python's isspace). */
  String valueOrMissing(String value) {
    if (value == null) {
      return missing;
    }
    for (int i = 0; i < value.length(); ) {
      int c = value.codePointAt(i);
      if (!isPythonSpace(c)) {
        return value;
      }
      i += Character.charCount(c);
    }
    return missing;
  }

  private static boolean isPythonSpace(int c) {
    return c == 0x85 || Character.isWhitespace(c) || Character.isSpaceChar(c);
  }

  private int index(String field) {
    for (int i = 0; i < fields.length; i++) {
      if (fields[i].equals(field)) {
        return i;
      }
    }
    throw new IllegalArgumentException("sessionizer config: no fact field named " + field);
  }

  private static List<String> required(Map<String, List<String>> lines, String key) {
    List<String> values = lines.get(key);
    if (values == null || values.isEmpty()) {
      throw new IllegalArgumentException("sessionizer config: " + key + " is missing");
    }
    return values;
  }

  private static String one(Map<String, List<String>> lines, String key) {
    return required(lines, key).get(0);
  }

  private static long longOf(Map<String, List<String>> lines, String key) {
    return Long.parseLong(one(lines, key));
  }
}

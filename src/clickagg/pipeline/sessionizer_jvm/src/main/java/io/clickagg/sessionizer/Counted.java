package io.clickagg.sessionizer;

import java.util.Comparator;

/** A counted (valid, unique, non-bot) event, reduced to what sessionization needs. */
final class Counted {
  /** The order of domain/sessions.Counted: (ts_ms, event_id, type, revenue, values). */
  static final Comparator<Counted> ORDER = Counted::compare;

  final long tsMs;
  final String eventId;
  final String type;
  final double revenue;
  final String[] values; // stored value per declared dimension (visitor_type: "")

  Counted(long tsMs, String eventId, String type, double revenue, String[] values) {
    this.tsMs = tsMs;
    this.eventId = eventId;
    this.type = type;
    this.revenue = revenue;
    this.values = values;
  }

  private static int compare(Counted a, Counted b) {
    int c = Long.compare(a.tsMs, b.tsMs);
    if (c == 0) {
      c = codePoints(a.eventId, b.eventId);
    }
    if (c == 0) {
      c = codePoints(a.type, b.type);
    }
    if (c == 0) {
      c = a.revenue < b.revenue ? -1 : (a.revenue > b.revenue ? 1 : 0); // Python's float order
    }
    for (int i = 0; c == 0 && i < Math.min(a.values.length, b.values.length); i++) {
      c = codePoints(a.values[i], b.values[i]);
    }
    return c != 0 ? c : Integer.compare(a.values.length, b.values.length);
  }

  /** Python compares strings by code point; String.compareTo by UTF-16 unit. */
  static int codePoints(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      int x = a.codePointAt(i);
      int y = b.codePointAt(j);
      if (x != y) {
        return Integer.compare(x, y);
      }
      i += Character.charCount(x);
      j += Character.charCount(y);
    }
    return Boolean.compare(i < a.length(), j < b.length());
  }
}

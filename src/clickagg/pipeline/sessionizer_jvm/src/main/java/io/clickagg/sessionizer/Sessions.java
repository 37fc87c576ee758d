package io.clickagg.sessionizer;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * domain/sessions.advance, line for line: merge arrived events into a visitor's open
 * visits, close the visits the watermark has passed, and return what changed as deltas.
 * Additions run in the order the Python runs them, so floating-point sums are identical.
 */
final class Sessions {
  /** A fact's cell: the bucket start and one value per declared dimension. */
  record Key(long bucketMs, List<String> values) {}

  /** The deltas to emit, and the event time to look again at (null: forget the visitor). */
  record Advanced(Map<Key, double[]> facts, Long nextCheckMs) {}

  private final SessionConfig config;

  Sessions(SessionConfig config) {
    this.config = config;
  }

  /** Updates state in place. */
  Advanced advance(VisitorState state, List<Counted> arrived, long watermarkMs) {
    Set<String> known = new HashSet<>();
    for (Counted e : state.openEvents) {
      known.add(e.eventId);
    }
    List<Counted> merged = new ArrayList<>(state.openEvents);
    for (Counted e : arrived) {
      if (!known.contains(e.eventId)) {
        merged.add(e);
      }
    }
    merged.sort(Counted.ORDER); // stable, as Python's sorted
    List<List<Counted>> visits = split(merged);
    int closed = 0;
    for (List<Counted> visit : visits) {
      if (last(visit).tsMs + config.timeoutMs < watermarkMs) {
        closed++;
      }
    }
    Map<Key, double[]> contributions = new LinkedHashMap<>();
    for (int i = 0; i < visits.size(); i++) {
      contribute(contributions, visits.get(i), state.visitsBefore + i, i < closed);
    }
    // What the open visits emitted so far: their contributions when they were last seen.
    Map<Key, double[]> emitted = new LinkedHashMap<>();
    List<List<Counted>> wereOpen = split(state.openEvents);
    for (int i = 0; i < wereOpen.size(); i++) {
      contribute(emitted, wereOpen.get(i), state.visitsBefore + i, false);
    }
    Map<Key, double[]> facts = difference(contributions, emitted);
    List<List<Counted>> stillOpen = visits.subList(closed, visits.size());
    List<Counted> open = new ArrayList<>();
    stillOpen.forEach(open::addAll);
    state.openEvents = open;
    state.visitsBefore += closed;
    for (Counted e : merged) {
      state.lastSeenMs = Math.max(state.lastSeenMs, e.tsMs);
    }
    if (!stillOpen.isEmpty()) {
      // The first open visit's close, not the last's (as sessions.advance): settle takes the
      // state to hold just the visits its watermark leaves open.
      return new Advanced(facts, last(stillOpen.get(0)).tsMs + config.timeoutMs);
    }
    long forgetAt = state.lastSeenMs + config.visitorMemoryMs;
    return new Advanced(facts, forgetAt >= watermarkMs ? forgetAt : null);
  }

  private List<List<Counted>> split(List<Counted> ordered) {
    List<List<Counted>> visits = new ArrayList<>();
    for (Counted event : ordered) {
      if (!visits.isEmpty() && event.tsMs - last(last(visits)).tsMs <= config.timeoutMs) {
        last(visits).add(event);
      } else {
        List<Counted> visit = new ArrayList<>();
        visit.add(event);
        visits.add(visit);
      }
    }
    return visits;
  }

  private void contribute(Map<Key, double[]> into, List<Counted> visit, long visitNumber,
                          boolean closed) {
    SessionConfig c = config;
    Counted first = visit.get(0);
    String visitorType = visitNumber == 0 ? c.newVisitor : c.returningVisitor;
    String[] attribution = first.values.clone();
    for (int i = 0; i < attribution.length; i++) {
      if (c.visitorType[i]) {
        attribution[i] = visitorType;
      }
    }
    Key visitKey = new Key(c.floor(first.tsMs), List.of(attribution));
    boolean hasOrder = false;
    boolean hasCart = false;
    List<Counted> pageViews = new ArrayList<>();
    for (Counted e : visit) {
      hasOrder |= e.type.equals(c.order);
      hasCart |= e.type.equals(c.addToCart);
      if (e.type.equals(c.pageView)) {
        pageViews.add(e);
      }
    }
    double[] cell = cell(into, visitKey);
    add(cell, c.visits, 1);
    add(cell, c.newVisits, visitNumber == 0 ? 1 : 0);
    add(cell, c.visitsWithOrder, hasOrder ? 1 : 0);
    for (Counted e : visit) {
      double[] own = cell(into, eventKey(e, attribution));
      add(own, c.events, 1);
      Integer counter = c.typeCounters.get(e.type);
      if (counter != null) {
        add(own, counter, 1);
      }
      if (e.type.equals(c.order)) {
        add(own, c.revenue, e.revenue);
      }
    }
    if (!pageViews.isEmpty()) {
      add(cell(into, eventKey(pageViews.get(0), attribution)), c.entries, 1);
    }
    if (!closed) {
      return;
    }
    if (!pageViews.isEmpty()) {
      add(cell(into, eventKey(last(pageViews), attribution)), c.exits, 1);
    }
    long durationMs = last(visit).tsMs - first.tsMs;
    add(cell, c.closedVisits, 1);
    add(cell, c.bounces, pageViews.size() == 1 ? 1 : 0);
    add(cell, c.engagedVisits,
        durationMs >= c.engagedMs || pageViews.size() >= 2 || hasOrder ? 1 : 0);
    add(cell, c.durationSum, durationMs / 1000.0);
    add(cell, c.pageViewsSum, pageViews.size());
    add(cell, c.visitsWithCart, hasCart ? 1 : 0);
    add(cell, c.visitsWithCartWithoutOrder, hasCart && !hasOrder ? 1 : 0);
  }

  private Key eventKey(Counted event, String[] attribution) {
    String[] values = new String[attribution.length];
    for (int i = 0; i < values.length; i++) {
      values[i] = config.eventScoped[i] ? event.values[i] : attribution[i];
    }
    return new Key(config.floor(event.tsMs), List.of(values));
  }

  private double[] cell(Map<Key, double[]> into, Key key) {
    return into.computeIfAbsent(key, k -> new double[config.fields.length]);
  }

  private static void add(double[] cell, int field, double amount) {
    if (amount != 0) { // Python's `if amount:` (NaN is truthy, and NaN != 0)
      cell[field] += amount;
    }
  }

  private static Map<Key, double[]> difference(Map<Key, double[]> now, Map<Key, double[]> before) {
    Map<Key, double[]> changed = new LinkedHashMap<>();
    for (Map.Entry<Key, double[]> entry : now.entrySet()) {
      double[] old = before.get(entry.getKey());
      put(changed, entry.getKey(), entry.getValue(), old);
    }
    for (Map.Entry<Key, double[]> entry : before.entrySet()) {
      if (!now.containsKey(entry.getKey())) {
        put(changed, entry.getKey(), null, entry.getValue());
      }
    }
    return changed;
  }

  private static void put(Map<Key, double[]> changed, Key key, double[] now, double[] old) {
    int n = now != null ? now.length : old.length;
    double[] delta = new double[n];
    boolean any = false;
    for (int i = 0; i < n; i++) {
      delta[i] = (now != null ? now[i] : 0) - (old != null ? old[i] : 0);
      any |= delta[i] != 0;
    }
    if (any) {
      changed.put(key, delta);
    }
  }

  private static <T> T last(List<T> list) {
    return list.get(list.size() - 1);
  }
}

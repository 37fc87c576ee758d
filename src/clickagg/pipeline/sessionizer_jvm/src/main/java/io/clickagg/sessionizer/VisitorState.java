package io.clickagg.sessionizer;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What is kept per visitor between micro-batches, as domain/sessions.VisitorState, except
 * that what the open visits have emitted is recomputed from their events instead of kept.
 *
 * <p>Stored as bytes: a version, visits_before and last_seen (varints), then the open events
 * with every type and dimension value written once per visitor and referenced by number.
 */
final class VisitorState {
  private static final byte VERSION = 1;

  List<Counted> openEvents = new ArrayList<>();
  long visitsBefore;
  long lastSeenMs;

  byte[] encode() {
    Writer out = new Writer();
    out.buffer.put(VERSION);
    out.varlong(visitsBefore);
    out.varlong(lastSeenMs);
    out.varlong(openEvents.size());
    Map<String, Integer> table = new HashMap<>();
    List<String> strings = new ArrayList<>();
    for (Counted e : openEvents) {
      table.computeIfAbsent(e.type, s -> add(strings, s));
      for (String v : e.values) {
        table.computeIfAbsent(v, s -> add(strings, s));
      }
    }
    out.varlong(strings.size());
    strings.forEach(out::string);
    long previous = 0;
    for (Counted e : openEvents) {
      out.varlong(zigzag(e.tsMs - previous)); // ascending: small positive steps
      previous = e.tsMs;
      out.string(e.eventId);
      out.varlong(table.get(e.type));
      out.buffer.putDouble(e.revenue);
      out.varlong(e.values.length);
      for (String v : e.values) {
        out.varlong(table.get(v));
      }
    }
    return out.bytes();
  }

  static VisitorState decode(byte[] bytes) {
    ByteBuffer in = ByteBuffer.wrap(bytes);
    byte version = in.get();
    if (version != VERSION) {
      throw new IllegalStateException("visitor state of unknown version " + version);
    }
    VisitorState state = new VisitorState();
    state.visitsBefore = varlong(in);
    state.lastSeenMs = varlong(in);
    int events = (int) varlong(in);
    String[] strings = new String[(int) varlong(in)];
    for (int i = 0; i < strings.length; i++) {
      strings[i] = string(in);
    }
    long ts = 0;
    for (int n = 0; n < events; n++) {
      ts += unzigzag(varlong(in));
      String eventId = string(in);
      String type = strings[(int) varlong(in)];
      double revenue = in.getDouble();
      String[] values = new String[(int) varlong(in)];
      for (int i = 0; i < values.length; i++) {
        values[i] = strings[(int) varlong(in)];
      }
      state.openEvents.add(new Counted(ts, eventId, type, revenue, values));
    }
    return state;
  }

  private static int add(List<String> strings, String s) {
    strings.add(s);
    return strings.size() - 1;
  }

  private static long zigzag(long v) {
    return (v << 1) ^ (v >> 63);
  }

  private static long unzigzag(long v) {
    return (v >>> 1) ^ -(v & 1);
  }

  private static long varlong(ByteBuffer in) {
    long value = 0;
    for (int shift = 0; ; shift += 7) {
      byte b = in.get();
      value |= (long) (b & 0x7f) << shift;
      if (b >= 0) {
        return value;
      }
    }
  }

  private static String string(ByteBuffer in) {
    int length = (int) varlong(in);
    String s = new String(in.array(), in.position(), length, StandardCharsets.UTF_8);
    in.position(in.position() + length);
    return s;
  }

  /** A growing buffer with varints (7 bits a byte) and length-prefixed UTF-8. */
  private static final class Writer {
    ByteBuffer buffer = ByteBuffer.allocate(256);

    void varlong(long v) {
      ensure(10);
      while ((v & ~0x7fL) != 0) {
        buffer.put((byte) ((v & 0x7f) | 0x80));
        v >>>= 7;
      }
      buffer.put((byte) v);
    }

    void string(String s) {
      byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
      varlong(utf8.length);
      ensure(utf8.length + 8); // and room for the revenue that may follow
      buffer.put(utf8);
    }

    byte[] bytes() {
      byte[] out = new byte[buffer.position()];
      buffer.flip();
      buffer.get(out);
      return out;
    }

    private void ensure(int more) {
      if (buffer.remaining() < more + 8) {
        ByteBuffer bigger = ByteBuffer.allocate(Math.max(buffer.capacity() * 2, buffer.position() + more + 64));
        buffer.flip();
        bigger.put(buffer);
        buffer = bigger;
      }
    }
  }
}

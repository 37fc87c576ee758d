package io.clickagg.sessionizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * One visitor's batches through the sessionizer, outside Spark, for the differential test
 * against domain/sessions.py (tests/spark/test_jvm_sessionizer.py). The state goes through
 * its byte encoding between batches, as in the state store.
 *
 * <p>Input, one line each: {@code W <watermark ms>} starts a batch; {@code E <ts ms> <event
 * id> <type> <revenue bits> <value>...} is an event of it (strings hex UTF-8, "-" for an absent
 * value). Output per batch: {@code S <next check ms or -> <state bytes>}, then one
 * {@code F <bucket ms> <values> <amount bits>} per fact (values and amounts comma-separated).
 */
public final class Scenario {
  private static final HexFormat HEX = HexFormat.of();

  private Scenario() {}

  public static String run(String configText, String scenarioText) {
    SessionConfig config = SessionConfig.parse(configText);
    Sessions sessions = new Sessions(config);
    VisitorState state = new VisitorState();
    StringBuilder out = new StringBuilder();
    List<Counted> arrived = new ArrayList<>();
    long watermark = Long.MIN_VALUE;
    for (String line : (scenarioText + "\nW\t0").split("\n")) {
      String[] parts = line.split("\t", -1);
      if (parts[0].equals("E")) {
        String[] values = new String[config.dimensionCount()];
        for (int i = 0; i < values.length; i++) {
          String raw = parts[5 + i].equals("-") ? null : text(parts[5 + i]);
          values[i] = config.visitorType[i] ? "" : config.valueOrMissing(raw);
        }
        arrived.add(new Counted(Long.parseLong(parts[1]), text(parts[2]), text(parts[3]),
            Double.longBitsToDouble(Long.parseLong(parts[4])), values));
        continue;
      }
      if (watermark != Long.MIN_VALUE) {
        Sessions.Advanced advanced = sessions.advance(state, arrived, watermark);
        byte[] bytes = state.encode();
        state = VisitorState.decode(bytes);
        Long next = advanced.nextCheckMs();
        out.append("S\t").append(next == null ? "-" : next.toString()).append('\t')
            .append(bytes.length).append('\n');
        for (Map.Entry<Sessions.Key, double[]> fact : advanced.facts().entrySet()) {
          out.append("F\t").append(fact.getKey().bucketMs()).append('\t');
          List<String> hex = new ArrayList<>();
          fact.getKey().values().forEach(v -> hex.add(HEX.formatHex(v.getBytes(StandardCharsets.UTF_8))));
          out.append(String.join(",", hex)).append('\t');
          List<String> bits = new ArrayList<>();
          for (double amount : fact.getValue()) {
            bits.add(Long.toString(Double.doubleToRawLongBits(amount)));
          }
          out.append(String.join(",", bits)).append('\n');
        }
        arrived = new ArrayList<>();
      }
      watermark = Long.parseLong(parts[1]);
    }
    return out.toString();
  }

  private static String text(String hex) {
    return new String(HEX.parseHex(hex), StandardCharsets.UTF_8);
  }
}

package io.clickagg.sessionizer;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.function.FlatMapGroupsFunction;
import org.apache.spark.api.java.function.FlatMapGroupsWithStateFunction;
import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.streaming.GroupState;
import org.apache.spark.sql.streaming.GroupStateTimeout;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The sessionizer as Spark runs it: once per visitor and micro-batch, state as bytes.
 *
 * <p>Input rows (clickagg.pipeline.jvm_sessionizer.INPUT_COLUMNS): visitor_id, ts_ms,
 * event_id, type, revenue, bot, then one string per declared dimension (its source field;
 * null for visitor_type and absent fields). Output rows: bucket_ms, dims, visitor, bot,
 * amounts, as the Python sessionizer's facts after unpacking.
 */
public final class Sessionizer {
  static final int VISITOR = 0;
  static final int TS = 1;
  static final int EVENT_ID = 2;
  static final int TYPE = 3;
  static final int REVENUE = 4;
  static final int BOT = 5;
  static final int FIRST_DIMENSION = 6;

  public static final StructType OUTPUT = new StructType()
      .add("bucket_ms", DataTypes.LongType, false)
      .add("dims", DataTypes.createArrayType(DataTypes.StringType, false), false)
      .add("visitor", DataTypes.StringType, false)
      .add("bot", DataTypes.BooleanType, false)
      .add("amounts", DataTypes.createArrayType(DataTypes.DoubleType, false), false);

  private Sessionizer() {}

  /** The streaming operator: flatMapGroupsWithState with an event-time timeout. */
  public static Dataset<Row> sessionize(Dataset<Row> events, String configText) {
    SessionConfig config = SessionConfig.parse(configText);
    Encoder<Row> output = Encoders.row(OUTPUT);
    return events
        .groupByKey((MapFunction<Row, String>) row -> row.getString(VISITOR), Encoders.STRING())
        .flatMapGroupsWithState(new Streaming(config), OutputMode.Append(), Encoders.BINARY(),
            output, GroupStateTimeout.EventTimeTimeout());
  }

  /** Replay: each visitor's whole history in one call, with a fixed watermark. */
  public static Dataset<Row> sessionizeOnce(Dataset<Row> events, String configText,
                                            long watermarkMs) {
    SessionConfig config = SessionConfig.parse(configText);
    return events
        .groupByKey((MapFunction<Row, String>) row -> row.getString(VISITOR), Encoders.STRING())
        .flatMapGroups(new Once(config, watermarkMs), Encoders.row(OUTPUT));
  }

  static final class Streaming implements FlatMapGroupsWithStateFunction<String, Row, byte[], Row> {
    private static final long serialVersionUID = 1L;
    private final SessionConfig config;

    Streaming(SessionConfig config) {
      this.config = config;
    }

    @Override
    public Iterator<Row> call(String visitor, Iterator<Row> rows, GroupState<byte[]> state) {
      Batch batch = Batch.read(rows, config);
      VisitorState current = state.exists() ? VisitorState.decode(state.get()) : new VisitorState();
      long watermark = state.getCurrentWatermarkMs();
      Sessions.Advanced advanced = new Sessions(config).advance(current, batch.counted, watermark);
      if (advanced.nextCheckMs() == null) {
        state.remove();
      } else {
        state.update(current.encode());
        state.setTimeoutTimestamp(Math.max(advanced.nextCheckMs(), watermark + 1));
      }
      return batch.output(visitor, advanced.facts()).iterator();
    }
  }

  static final class Once implements FlatMapGroupsFunction<String, Row, Row> {
    private static final long serialVersionUID = 1L;
    private final SessionConfig config;
    private final long watermarkMs;

    Once(SessionConfig config, long watermarkMs) {
      this.config = config;
      this.watermarkMs = watermarkMs;
    }

    @Override
    public Iterator<Row> call(String visitor, Iterator<Row> rows) {
      Batch batch = Batch.read(rows, config);
      Sessions.Advanced advanced =
          new Sessions(config).advance(new VisitorState(), batch.counted, watermarkMs);
      return batch.output(visitor, advanced.facts()).iterator();
    }
  }

  /** One visitor's rows of a batch: counted events, and bot events per bucket. */
  static final class Batch {
    final List<Counted> counted = new ArrayList<>();
    final Map<Long, Integer> botsPerBucket = new LinkedHashMap<>();
    private final SessionConfig config;

    private Batch(SessionConfig config) {
      this.config = config;
    }

    static Batch read(Iterator<Row> rows, SessionConfig config) {
      Batch batch = new Batch(config);
      while (rows.hasNext()) {
        Row row = rows.next();
        long ts = row.getLong(TS);
        if (!row.isNullAt(BOT) && row.getBoolean(BOT)) {
          batch.botsPerBucket.merge(config.floor(ts), 1, Integer::sum);
          continue;
        }
        double revenue = row.isNullAt(REVENUE) ? 0.0 : row.getDouble(REVENUE);
        String[] values = new String[config.dimensionCount()];
        for (int i = 0; i < values.length; i++) {
          values[i] = config.visitorType[i] ? ""
              : config.valueOrMissing(row.getString(FIRST_DIMENSION + i));
        }
        batch.counted.add(new Counted(ts, row.getString(EVENT_ID), row.getString(TYPE),
            Double.isNaN(revenue) ? 0.0 : revenue, values));
      }
      return batch;
    }

    List<Row> output(String visitor, Map<Sessions.Key, double[]> facts) {
      List<Row> out = new ArrayList<>(facts.size() + botsPerBucket.size());
      facts.forEach((key, amounts) -> out.add(RowFactory.create(
          key.bucketMs(), key.values().toArray(new String[0]), visitor, false, amounts)));
      botsPerBucket.forEach((bucket, count) -> {
        double[] amounts = new double[config.fields.length];
        amounts[config.events] = count;
        out.add(RowFactory.create(bucket, new String[0], visitor, true, amounts));
      });
      return out;
    }
  }
}

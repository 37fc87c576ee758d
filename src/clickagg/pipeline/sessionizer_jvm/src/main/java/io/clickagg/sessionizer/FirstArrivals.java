package io.clickagg.sessionizer;

import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;

/**
 * The stream's first arrival of each event id within a micro-batch (clickagg.pipeline.dedup):
 * every copy of an event id goes to one task, which keeps the copy with the smallest arrival
 * columns, compared in order, nulls last. The JVM twin of dedup.first_copies, without an
 * Arrow round trip through a Python worker per row.
 */
public final class FirstArrivals {
  private FirstArrivals() {}

  /** `events` reduced to the first arrival of each `idColumn`, by `orderColumns`. */
  public static Dataset<Row> of(Dataset<Row> events, String idColumn, String[] orderColumns) {
    StructType schema = events.schema();
    int id = schema.fieldIndex(idColumn);
    int[] order = new int[orderColumns.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = schema.fieldIndex(orderColumns[i]);
    }
    return events.repartition(events.col(idColumn))
        .mapPartitions(new Keep(id, order), Encoders.row(schema));
  }

  static final class Keep implements MapPartitionsFunction<Row, Row> {
    private static final long serialVersionUID = 1L;
    private final int id;
    private final int[] order;

    Keep(int id, int[] order) {
      this.id = id;
      this.order = order;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> rows) {
      Map<Object, Row> first = new HashMap<>();
      while (rows.hasNext()) {
        Row row = rows.next();
        first.merge(row.get(id), row, (kept, other) -> earlier(other, kept) ? other : kept);
      }
      return first.values().iterator();
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    boolean earlier(Row a, Row b) {
      for (int column : order) {
        Object x = a.get(column);
        Object y = b.get(column);
        if (x == null || y == null) {
          if (x == y) {
            continue;
          }
          return y == null;  // nulls last
        }
        int c = ((Comparable) x).compareTo(y);
        if (c != 0) {
          return c < 0;
        }
      }
      return false;
    }
  }
}

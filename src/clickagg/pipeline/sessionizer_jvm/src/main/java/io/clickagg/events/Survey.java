package io.clickagg.events;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The first pass over a batch's lines: per partition, the newest event time of the lines the
 * JVM accepts, their distinct user agents and (url, referrer) pairs that enrichment must look
 * at, and the deferred lines themselves (up to a bound; beyond it one {@code overflow} row says
 * the batch is Python's). Rows are small: the driver collects them. A {@code newest} row
 * carries its time in arrival_offset.
 */
final class Survey implements MapPartitionsFunction<Row, Row> {
  private static final long serialVersionUID = 1L;
  static final String NEWEST = "newest";
  static final String AGENT = "agent";
  static final String LINK = "link";
  static final String DEFERRED = "deferred";
  static final String OVERFLOW = "overflow";
  static final StructType OUTPUT = new StructType()
      .add("kind", DataTypes.StringType, false)
      .add("a", DataTypes.StringType, true)
      .add("b", DataTypes.StringType, true)
      .add("value", DataTypes.BinaryType, true)
      .add("arrival_source", DataTypes.StringType, true)
      .add("arrival_offset", DataTypes.LongType, true);
  private final EventParser.Config config;

  Survey(EventParser.Config config) {
    this.config = config;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    EventParser.Lines lines = new EventParser.Lines(config);
    Fields at = new Fields(config);
    Set<String> agents = new HashSet<>();
    Set<List<String>> links = new HashSet<>();
    List<Row> out = new ArrayList<>();
    long newest = Long.MIN_VALUE;
    long deferredBytes = 0;
    int deferred = 0;
    boolean overflow = false;
    while (input.hasNext()) {
      Row line = input.next();
      byte[] value = line.isNullAt(0) ? new byte[0] : (byte[]) line.get(0);
      String source = line.getString(1);
      long offset = lines.offset(source, line.getLong(2));
      Object[] fields = lines.fields(value);
      if (fields == null) {
        deferred++;
        deferredBytes += value.length;
        overflow |= deferred > config.deferredKeptLines || deferredBytes > config.deferredKeptBytes;
        if (!overflow) {
          out.add(RowFactory.create(DEFERRED, null, null, value, source, offset));
        }
        continue;
      }
      newest = Math.max(newest, (Long) fields[at.ts]);
      if (fields[at.userAgent] != null) {
        agents.add((String) fields[at.userAgent]);
      }
      if (at.needsLinks(fields)) {
        links.add(Arrays.asList((String) fields[at.url], (String) fields[at.referrer]));
      }
    }
    if (overflow) {
      return Collections.singletonList(RowFactory.create(OVERFLOW, null, null, null, null, null))
          .iterator();
    }
    if (newest != Long.MIN_VALUE) {
      out.add(RowFactory.create(NEWEST, null, null, null, null, newest));
    }
    for (String agent : agents) {
      out.add(RowFactory.create(AGENT, agent, null, null, null, null));
    }
    for (List<String> link : links) {
      out.add(RowFactory.create(LINK, link.get(0), link.get(1), null, null, null));
    }
    return out.iterator();
  }

  /** Where the fields enrichment reads sit in a parsed line ({@link EventParser.Lines#fields}). */
  static final class Fields implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    final int userAgent;
    final int url;
    final int referrer;
    final int channel;
    final int campaign;
    final int page;
    final int deviceClass;
    final int browserFamily;
    final int revenue;
    final int ts;

    Fields(EventParser.Config config) {
      List<String> names = config.strings;
      userAgent = names.indexOf("user_agent");
      url = names.indexOf("url");
      referrer = names.indexOf("referrer");
      channel = names.indexOf("channel");
      campaign = names.indexOf("campaign");
      page = names.indexOf("page");
      deviceClass = names.indexOf("device_class");
      browserFamily = names.indexOf("browser_family");
      revenue = names.size();
      ts = names.size() + 1;
    }

    /** domain/enrich.py's enrich reads the links unless the event names all three. */
    boolean needsLinks(Object[] fields) {
      return fields[channel] == null || fields[campaign] == null || fields[page] == null;
    }
  }
}

package io.clickagg.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.solr.cloud.MiniSolrCloudCluster;
import org.apache.solr.cloud.ZkTestServer;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;
import org.apache.solr.util.SolrTestNonSecureRandomProvider;

/**
 * Runs clickagg's local SolrCloud: an embedded ZooKeeper and one Solr node per port, all on
 * 127.0.0.1 with fixed ports.
 *
 * <p>It exists because Maven Central has no Solr 9 server distribution, while solr-test-framework
 * runs a real SolrCloud outside JUnit (Solr's own JMH benchmarks do the same). The Python side
 * ({@code clickagg.local.solr}) starts it, waits for the {@value #READY_MARKER} line on stdout and
 * stops it with SIGTERM, which the shutdown hook turns into a clean stop of nodes and ZooKeeper.
 *
 * <p>Usage: {@code SolrCloudLauncher --zk-port 9983 --ports 8983,8984 --dir /path/to/empty/dir}
 */
public final class SolrCloudLauncher {

  static final String READY_MARKER = "CLICKAGG-SOLR-READY";
  private static final String HOST = "127.0.0.1";
  private static final String CONTEXT = "/solr";
  private static final int NODE_LIVE_TIMEOUT_SECONDS = 120;

  /** The command line, parsed. */
  record Options(int zkPort, List<Integer> ports, Path dir) {

    static Options parse(String[] args) {
      Integer zkPort = null;
      List<Integer> ports = null;
      Path dir = null;
      for (int i = 0; i < args.length; i += 2) {
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException("missing value after " + args[i]);
        }
        String value = args[i + 1];
        switch (args[i]) {
          case "--zk-port" -> zkPort = Integer.parseInt(value);
          case "--ports" -> ports = Stream.of(value.split(",")).map(Integer::parseInt).toList();
          case "--dir" -> dir = Path.of(value).toAbsolutePath();
          default -> throw new IllegalArgumentException("unknown option " + args[i]);
        }
      }
      if (zkPort == null || ports == null || ports.isEmpty() || dir == null) {
        throw new IllegalArgumentException("--zk-port, --ports and --dir are all required");
      }
      return new Options(zkPort, List.copyOf(ports), dir);
    }
  }

  private final Options options;
  // Set while starting, so the shutdown hook stops whatever got started even mid-start.
  private volatile ZkTestServer zk;
  private volatile MiniSolrCloudCluster cluster;
  private final List<JettySolrRunner> nodes = new ArrayList<>();

  private SolrCloudLauncher(Options options) {
    this.options = options;
  }

  public static void main(String[] args) throws InterruptedException {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("SolrCloudLauncher: " + e.getMessage());
      System.err.println("usage: SolrCloudLauncher --zk-port P --ports P1,P2 --dir DIR");
      System.exit(2);
      return;
    }
    prepareForRunningOutsideJUnit(options.dir());
    SolrCloudLauncher launcher = new SolrCloudLauncher(options);
    // Registered before starting: a SIGTERM during start-up still stops the nodes cleanly.
    Runtime.getRuntime().addShutdownHook(new Thread(launcher::stop, "clickagg-solr-stop"));
    try {
      launcher.start();
    } catch (Exception e) {
      System.out.println("CLICKAGG-SOLR-FAILED " + e);
      e.printStackTrace(System.out);
      System.exit(1);
    }
    System.out.println(launcher.readyLine());
    System.out.flush();
    // Jetty and ZooKeeper run on their own threads; main only waits for SIGTERM.
    new CountDownLatch(1).await();
  }

  /** The system set-up that solr-test-framework otherwise gets from its JUnit rules. */
  private static void prepareForRunningOutsideJUnit(Path dir) {
    // Closing an IndexWriter must not wait for merges: shutdown stays fast.
    System.setProperty("doNotWaitForMergesOnIWClose", "true");
    // The test key files are not in the jars; empty paths make each node generate its keys.
    System.setProperty("pkiHandlerPrivateKeyPath", "");
    System.setProperty("pkiHandlerPublicKeyPath", "");
    // Trace ids would call LuceneTestCase.rarely(), which needs a randomized-test context.
    System.setProperty("solr.alwaysOnTraceId", "false");
    // ZkTestServer needs the 'stat' four-letter word; allowing it up front avoids an ERROR line.
    System.setProperty("zookeeper.4lw.commands.whitelist", "ruok,stat,srvr,mntr,conf");
    // Solr logs to stdout (log4j2.xml); this only stops it complaining that the dir is unset.
    System.setProperty("solr.log.dir", dir.resolve("logs").toString());
    // Jersey (Solr's v2 API) logs through java.util.logging; keep only its errors.
    java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.SEVERE);
    // SecureRandom must not block on a small VM with little entropy.
    SolrTestNonSecureRandomProvider.injectProvider();
  }

  private void start() throws Exception {
    ensureEmptyDir(options.dir());
    zk = new ZkTestServer(options.dir().resolve("zookeeper"), options.zkPort());
    zk.run(false);
    // Zero nodes: the builder would give every node the same port; each is added below.
    String solrXml = MiniSolrCloudCluster.DEFAULT_CLOUD_SOLR_XML;
    cluster = new MiniSolrCloudCluster(0, options.dir(), solrXml, jettyConfig(0), zk, false);
    startNodesInParallel();
    for (JettySolrRunner node : nodes) {
      cluster.waitForNode(node, NODE_LIVE_TIMEOUT_SECONDS);
    }
  }

  private void startNodesInParallel() throws Exception {
    List<CompletableFuture<JettySolrRunner>> starts = new ArrayList<>();
    for (int port : options.ports()) {
      starts.add(
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return cluster.startJettySolrRunner("node-" + port, CONTEXT, jettyConfig(port));
                } catch (Exception e) {
                  throw new IllegalStateException("Solr node on port " + port + " failed", e);
                }
              }));
    }
    for (CompletableFuture<JettySolrRunner> start : starts) {
      nodes.add(start.get());
    }
  }

  private static JettyConfig jettyConfig(int port) {
    // No port retries: a taken port must fail at once, not after a minute.
    return JettyConfig.builder()
        .setPort(port)
        .setContext(CONTEXT)
        .withPortRetryTime(0)
        .stopAtShutdown(false)
        .build();
  }

  private static void ensureEmptyDir(Path dir) throws IOException {
    Files.createDirectories(dir);
    try (Stream<Path> entries = Files.list(dir)) {
      if (entries.findAny().isPresent()) {
        throw new IllegalStateException(dir + " is not empty: the local cluster starts fresh");
      }
    }
  }

  private String readyLine() {
    String urls =
        options.ports().stream()
            .map(port -> "http://" + HOST + ":" + port + CONTEXT)
            .collect(Collectors.joining(","));
    return READY_MARKER + " zk=" + HOST + ":" + options.zkPort() + " nodes=" + urls;
  }

  /** Stops the nodes, then ZooKeeper; each step runs even if an earlier one failed. */
  private void stop() {
    MiniSolrCloudCluster started = cluster;
    if (started != null) {
      try {
        started.shutdown();
      } catch (Exception e) {
        System.out.println("clickagg-solr: error stopping the Solr nodes: " + e);
      }
    }
    ZkTestServer zookeeper = zk;
    if (zookeeper != null) {
      try {
        zookeeper.shutdown();
      } catch (Exception e) {
        System.out.println("clickagg-solr: error stopping ZooKeeper: " + e);
      }
    }
    System.out.println("CLICKAGG-SOLR-STOPPED");
    System.out.flush();
  }
}

package io.clickagg.local;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.solr.client.solrj.embedded.SSLConfig;
import org.apache.solr.cloud.MiniSolrCloudCluster;
import org.apache.solr.cloud.ZkTestServer;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;
import org.apache.solr.util.SolrTestNonSecureRandomProvider;
import org.eclipse.jetty.server.ConnectionFactory;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.NegotiatingServerConnectionFactory;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.HandlerWrapper;

/**
 * Runs clickagg's local SolrCloud: an embedded ZooKeeper on 127.0.0.1 and one Solr node per port,
 * each on its own loopback address ({@code --hosts}, 127.0.0.1 for all by default), fixed ports.
 *
 * <p>With {@code --hosts 127.0.0.2,127.0.0.3} the nodes listen on, and register in live_nodes
 * under, two distinct addresses, so shards have real distinct hosts (Spark locality tests).
 *
 * <p>It exists because Maven Central has no Solr 9 server distribution, while solr-test-framework
 * runs a real SolrCloud outside JUnit (Solr's own JMH benchmarks do the same). The Python side
 * ({@code clickagg.local.solr}) starts it, waits for the {@value #READY_MARKER} line on stdout and
 * stops it with SIGTERM, which the shutdown hook turns into a clean stop of nodes and ZooKeeper.
 *
 * <p>With {@code --control-port P} (0 picks a free one) it also listens on 127.0.0.1:P for one-line
 * text commands, each answered by one line starting with {@code ok} or {@code error}: {@code stop
 * <i>} stops node i (its index in {@code --ports}) and waits until it has left ZooKeeper's
 * live_nodes; {@code start <i>} starts it again on the same port and solr home, so its cores come
 * back, and waits until it is live again; {@code status} answers {@code ok 0=running 1=stopped}.
 * Fault tests use it to stop one node while ZooKeeper and the other node keep running.
 *
 * <p>With {@code --security-json FILE} the file is written to ZooKeeper as the cluster's
 * security.json before any node starts, so every node comes up with its authentication and
 * authorization plugins (BasicAuth and rule-based in clickagg's case; the nodes sign their own
 * requests to each other with PKI). The file holds password hashes only; the launcher does not
 * print it.
 *
 * <p>With {@code --tls-dir DIR} every node serves https only, with the key and certificate chain
 * of {@code DIR/keystore.p12} (PKCS12; its password is the content of {@code
 * DIR/keystore.password}, read here so it never appears in a command line, a system property or
 * a log), and the cluster property {@code urlScheme} is https (MiniSolrCloudCluster writes it
 * when its JettyConfig has an SSLConfig). The nodes call each other over https and verify the
 * peer's certificate and host name against {@code DIR/truststore.p12} (the CA only, no password),
 * through the {@code javax.net.ssl.trustStore} properties that Solr's HTTP clients read. ZooKeeper
 * stays plain on loopback. JettySolrRunner builds an SSL connector only in its test mode ({@code
 * jetty.testMode}), which is therefore set with TLS only.
 *
 * <p>With {@code --zk-host H:P/chroot} instead of {@code --zk-port} it runs one node only (one
 * port, one host), in this JVM, joined to a running cluster's ZooKeeper: a node that a crash test
 * can SIGKILL without touching ZooKeeper or the other nodes. Its solr home under {@code --dir} is
 * kept, so starting it again on the same port brings its cores back (the dir need not be empty).
 * Its ZooKeeper session timeout is {@value #JOINED_ZK_TIMEOUT_MS} ms, so the live_nodes entry of a
 * killed node expires soon and a restart does not wait long for it.
 *
 * <p>Usage: {@code SolrCloudLauncher --zk-port 9983 --ports 8983,8984 --dir /path/to/empty/dir
 * [--hosts 127.0.0.2,127.0.0.3] [--control-port 0] [--security-json FILE] [--tls-dir DIR]}, or
 * {@code SolrCloudLauncher --zk-host 127.0.0.1:9983/solr --ports 8985 --hosts 127.0.0.4 --dir DIR}
 */
public final class SolrCloudLauncher {

  static final String READY_MARKER = "CLICKAGG-SOLR-READY";
  private static final String LOOPBACK = "127.0.0.1";
  // MiniSolrCloudCluster's solr.xml names 127.0.0.1 as every node's host; ours reads the
  // per-node "host" property instead (set from --hosts).
  private static final String FIXED_HOST_XML = "<str name=\"host\">127.0.0.1</str>";
  private static final String NODE_HOST_XML = "<str name=\"host\">${host:127.0.0.1}</str>";
  private static final String CONTEXT = "/solr";
  private static final int NODE_LIVE_TIMEOUT_SECONDS = 120;
  // A control client that connects but sends nothing is dropped after this.
  private static final int CONTROL_READ_TIMEOUT_MS = 60_000;
  static final String KEYSTORE_FILE = "keystore.p12";
  static final String KEYSTORE_PASSWORD_FILE = "keystore.password";
  static final String TRUSTSTORE_FILE = "truststore.p12";
  static final int JOINED_ZK_TIMEOUT_MS = 8_000;

  /**
   * The command line, parsed; {@code hosts.get(i)} is node i's address, {@code controlPort} is -1
   * when there is no control channel.
   */
  record Options(
      int zkPort,
      List<Integer> ports,
      List<String> hosts,
      Path dir,
      int controlPort,
      Path securityJson,
      Path tlsDir,
      String zkHost) {

    static Options parse(String[] args) {
      Integer zkPort = null;
      List<Integer> ports = null;
      List<String> hosts = null;
      Path dir = null;
      int controlPort = -1;
      Path securityJson = null;
      Path tlsDir = null;
      String zkHost = null;
      for (int i = 0; i < args.length; i += 2) {
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException("missing value after " + args[i]);
        }
        String value = args[i + 1];
        switch (args[i]) {
          case "--zk-port" -> zkPort = Integer.parseInt(value);
          case "--ports" -> ports = Stream.of(value.split(",")).map(Integer::parseInt).toList();
          case "--hosts" -> hosts = List.of(value.split(","));
          case "--dir" -> dir = Path.of(value).toAbsolutePath();
          case "--control-port" -> controlPort = Integer.parseInt(value);
          case "--security-json" -> securityJson = Path.of(value).toAbsolutePath();
          case "--tls-dir" -> tlsDir = Path.of(value).toAbsolutePath();
          case "--zk-host" -> zkHost = value;
          default -> throw new IllegalArgumentException("unknown option " + args[i]);
        }
      }
      if (zkHost != null) {
        if (zkPort != null || controlPort != -1 || securityJson != null) {
          throw new IllegalArgumentException(
              "--zk-host runs one node: no --zk-port, --control-port or --security-json");
        }
        if (ports == null || ports.size() != 1 || dir == null) {
          throw new IllegalArgumentException("--zk-host needs one port in --ports, and --dir");
        }
        zkPort = -1;
      }
      if (zkPort == null || ports == null || ports.isEmpty() || dir == null) {
        throw new IllegalArgumentException("--zk-port, --ports and --dir are all required");
      }
      if (controlPort < -1 || controlPort > 65535) {
        throw new IllegalArgumentException("--control-port must be 0..65535");
      }
      if (hosts == null) {
        hosts = ports.stream().map(port -> LOOPBACK).toList();
      }
      if (hosts.size() != ports.size()) {
        throw new IllegalArgumentException(
            "--hosts names " + hosts.size() + " addresses for " + ports.size() + " --ports");
      }
      for (String host : hosts) {
        if (!host.startsWith("127.")) {
          throw new IllegalArgumentException("--hosts: " + host + " is not a loopback address");
        }
      }
      return new Options(
          zkPort,
          List.copyOf(ports),
          List.copyOf(hosts),
          dir,
          controlPort,
          securityJson,
          tlsDir,
          zkHost);
    }
  }

  private final Options options;
  // Set while starting, so the shutdown hook stops whatever got started even mid-start.
  private volatile ZkTestServer zk;
  private volatile MiniSolrCloudCluster cluster;
  // In --ports order: the control channel's node index is the index here.
  private final List<JettySolrRunner> nodes = new ArrayList<>();
  // Bound before the cluster starts, so a taken control port fails at once.
  private ServerSocket control;
  private volatile boolean stopping;
  // One stop/start at a time: they change which nodes run.
  private final Object nodeLock = new Object();

  // With --tls-dir: the nodes' server-side SSL settings (keystore and its password); else null.
  private final SSLConfig sslConfig;

  private SolrCloudLauncher(Options options, SSLConfig sslConfig) {
    this.options = options;
    this.sslConfig = sslConfig;
  }

  public static void main(String[] args) throws InterruptedException {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("SolrCloudLauncher: " + e.getMessage());
      System.err.println(
          "usage: SolrCloudLauncher --zk-port P --ports P1,P2 --dir DIR [--hosts H1,H2]"
              + " [--control-port P] [--security-json FILE] [--tls-dir DIR]\n"
              + "   or: SolrCloudLauncher --zk-host H:P/CHROOT --ports P --hosts H --dir DIR");
      System.exit(2);
      return;
    }
    prepareForRunningOutsideJUnit(options.dir());
    SSLConfig sslConfig;
    try {
      sslConfig = options.tlsDir() == null ? null : prepareTls(options.tlsDir());
    } catch (IOException | RuntimeException e) {
      System.out.println("CLICKAGG-SOLR-FAILED TLS set-up from " + options.tlsDir() + ": " + e);
      System.exit(1);
      return;
    }
    if (options.zkHost() != null) {
      runJoinedNode(options, sslConfig);
      return;
    }
    SolrCloudLauncher launcher = new SolrCloudLauncher(options, sslConfig);
    // Registered before starting: a SIGTERM during start-up still stops the nodes cleanly.
    Runtime.getRuntime().addShutdownHook(new Thread(launcher::stop, "clickagg-solr-stop"));
    try {
      launcher.start();
    } catch (Exception e) {
      System.out.println("CLICKAGG-SOLR-FAILED " + e);
      e.printStackTrace(System.out);
      System.exit(1);
    }
    launcher.serveControlChannel();
    System.out.println(launcher.readyLine());
    System.out.flush();
    // Jetty and ZooKeeper run on their own threads; main only waits for SIGTERM.
    new CountDownLatch(1).await();
  }

  /**
   * One node in this JVM, joined to the ZooKeeper at {@code --zk-host}: started, live, then
   * running until SIGTERM (a clean stop) or SIGKILL (what crash tests send).
   */
  private static void runJoinedNode(Options options, SSLConfig sslConfig) throws InterruptedException {
    String host = options.hosts().get(0);
    int port = options.ports().get(0);
    JettySolrRunner node;
    try {
      Path home = options.dir().resolve("node-" + host + "-" + port);
      if (!Files.exists(home.resolve("solr.xml"))) {
        Files.createDirectories(home);
        Files.writeString(home.resolve("solr.xml"), solrXml());
      }
      Properties properties = new Properties();
      properties.setProperty("zkHost", options.zkHost());
      properties.setProperty("host", host);
      properties.setProperty("solr.zkclienttimeout", String.valueOf(JOINED_ZK_TIMEOUT_MS));
      node = new HostBoundJettySolrRunner(home.toString(), properties, jettyConfig(port, sslConfig));
      JettySolrRunner started = node;
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    try {
                      started.stop();
                    } catch (Exception e) {
                      System.out.println("clickagg-solr: error stopping the Solr node: " + e);
                    }
                    System.out.println("CLICKAGG-SOLR-STOPPED");
                    System.out.flush();
                  },
                  "clickagg-solr-stop"));
      node.start();
      String nodeName = node.getNodeName();
      node.getCoreContainer()
          .getZkController()
          .getZkStateReader()
          .waitForLiveNodes(
              NODE_LIVE_TIMEOUT_SECONDS,
              TimeUnit.SECONDS,
              (before, live) -> live != null && live.contains(nodeName));
    } catch (Exception e) {
      System.out.println("CLICKAGG-SOLR-FAILED " + e);
      e.printStackTrace(System.out);
      System.exit(1);
      return;
    }
    String url = "http://" + host + ":" + port + CONTEXT;
    System.out.println(READY_MARKER + " zk=" + options.zkHost() + " nodes=" + url);
    System.out.flush();
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

  /**
   * The nodes' SSLConfig from the files in {@code dir}, and the JVM-wide client trust: Solr's
   * inter-node clients (Http2SolrClient's default SslContextFactory, HttpClientUtil's system
   * socket factory) read the javax.net.ssl trust store properties and solr.ssl.checkPeerName.
   */
  private static SSLConfig prepareTls(Path dir) throws IOException {
    Path keystore = dir.resolve(KEYSTORE_FILE);
    Path truststore = dir.resolve(TRUSTSTORE_FILE);
    for (Path required : List.of(keystore, truststore)) {
      if (!Files.isReadable(required)) {
        throw new IOException(required + " is missing");
      }
    }
    String password =
        Files.readString(dir.resolve(KEYSTORE_PASSWORD_FILE), StandardCharsets.UTF_8).strip();
    // JettySolrRunner puts an SSL connector in only in its test mode.
    System.setProperty("jetty.testMode", "true");
    System.setProperty("javax.net.ssl.trustStore", truststore.toString());
    System.setProperty("javax.net.ssl.trustStoreType", "PKCS12");
    System.setProperty("solr.ssl.checkPeerName", "true");
    // Server side only: no client certificates (clientAuth false), so no server trust store.
    return new SSLConfig(true, false, keystore.toString(), password, null, null);
  }

  private void start() throws Exception {
    ensureEmptyDir(options.dir());
    if (options.controlPort() >= 0) {
      control = new ServerSocket(options.controlPort(), 8, InetAddress.getLoopbackAddress());
    }
    zk = new ZkTestServer(options.dir().resolve("zookeeper"), options.zkPort());
    zk.run(false);
    // Zero nodes: the builder would give every node the same port; each is added below.
    cluster = newCluster(securityJson());
    startNodesInParallel();
    for (JettySolrRunner node : nodes) {
      cluster.waitForNode(node, NODE_LIVE_TIMEOUT_SECONDS);
    }
  }

  /** The --security-json file's text, or empty without the option. */
  private Optional<String> securityJson() throws IOException {
    if (options.securityJson() == null) {
      return Optional.empty();
    }
    return Optional.of(Files.readString(options.securityJson(), StandardCharsets.UTF_8));
  }

  /**
   * A cluster of zero nodes on our ZooKeeper. With a security.json it uses the constructor that
   * writes it to ZooKeeper before the first node starts (what the Builder's withSecurityJson
   * calls); that constructor is package-private, so it is reached by reflection.
   */
  private MiniSolrCloudCluster newCluster(Optional<String> securityJson) throws Exception {
    if (securityJson.isEmpty()) {
      return new MiniSolrCloudCluster(
          0, options.dir(), solrXml(), jettyConfig(0, sslConfig), zk, false);
    }
    Constructor<MiniSolrCloudCluster> withSecurity =
        MiniSolrCloudCluster.class.getDeclaredConstructor(
            int.class,
            Path.class,
            String.class,
            JettyConfig.class,
            ZkTestServer.class,
            Optional.class,
            boolean.class);
    withSecurity.setAccessible(true);
    try {
      return withSecurity.newInstance(
          0, options.dir(), solrXml(), jettyConfig(0, sslConfig), zk, securityJson, false);
    } catch (InvocationTargetException e) {
      throw e.getCause() instanceof Exception cause ? cause : e;
    }
  }

  private void startNodesInParallel() throws Exception {
    List<CompletableFuture<JettySolrRunner>> starts = new ArrayList<>();
    for (int i = 0; i < options.ports().size(); i++) {
      int port = options.ports().get(i);
      String host = options.hosts().get(i);
      starts.add(
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return startNode(host, port);
                } catch (Exception e) {
                  throw new IllegalStateException(
                      "Solr node on " + host + ":" + port + " failed", e);
                }
              }));
    }
    for (CompletableFuture<JettySolrRunner> start : starts) {
      nodes.add(start.get());
    }
  }

  /**
   * What {@code MiniSolrCloudCluster.startJettySolrRunner(name, context, config)} does, with a
   * runner that binds the node's own address and a "host" property that names it in ZooKeeper.
   */
  private JettySolrRunner startNode(String host, int port) throws Exception {
    Path home = Files.createDirectory(options.dir().resolve("node-" + host + "-" + port));
    // In the node's home as well as in ZooKeeper: whichever copy Solr reads has the host.
    Files.writeString(home.resolve("solr.xml"), solrXml());
    Properties properties = new Properties();
    properties.setProperty("zkHost", zk.getZkAddress());
    properties.setProperty("host", host);
    JettySolrRunner node =
        new HostBoundJettySolrRunner(home.toString(), properties, jettyConfig(port, sslConfig));
    return cluster.startJettySolrRunner(node);
  }

  private static String solrXml() {
    String xml = MiniSolrCloudCluster.DEFAULT_CLOUD_SOLR_XML;
    if (!xml.contains(FIXED_HOST_XML)) {
      throw new IllegalStateException("solr-test-framework's solr.xml no longer names 127.0.0.1");
    }
    return xml.replace(FIXED_HOST_XML, NODE_HOST_XML);
  }

  /**
   * A Jetty Solr node listening on its "host" node property. JettySolrRunner binds 127.0.0.1 in
   * its private init(), again on every restart; this hook runs at the end of each init().
   *
   * <p>With TLS it also lets clients that offer only HTTP/1.1 through ALPN (Python's urllib3,
   * curl --http1.1) in: JettySolrRunner names HTTP/1.1 to ALPN by its connection factory's
   * protocol, "HTTP/1.1", while ALPN's name is "http/1.1" and Jetty's ALPN selection compares case
   * sensitively, so it would answer such a client with a no_application_protocol alert. Solr's
   * own clients offer h2 and are not affected. The connector looks factories up in lower case.
   */
  static final class HostBoundJettySolrRunner extends JettySolrRunner {

    HostBoundJettySolrRunner(String solrHome, Properties properties, JettyConfig config) {
      super(solrHome, properties, config);
    }

    @Override
    protected HandlerWrapper injectJettyHandlers(HandlerWrapper chain) {
      // Called from the super constructor: only the super class's fields are set yet.
      String host = getNodeProperties().getProperty("host");
      for (Connector connector : chain.getServer().getConnectors()) {
        ((ServerConnector) connector).setHost(host);
        for (ConnectionFactory factory : connector.getConnectionFactories()) {
          if (factory instanceof NegotiatingServerConnectionFactory negotiating) {
            negotiating.getNegotiatedProtocols().replaceAll(p -> p.toLowerCase(Locale.ROOT));
          }
        }
      }
      return chain;
    }
  }

  /** With an SSLConfig the node serves https only (and the cluster's urlScheme is https). */
  private static JettyConfig jettyConfig(int port, SSLConfig sslConfig) {
    // No port retries: a taken port must fail at once, not after a minute.
    JettyConfig.Builder builder =
        JettyConfig.builder()
            .setPort(port)
            .setContext(CONTEXT)
            .withPortRetryTime(0)
            .stopAtShutdown(false);
    if (sslConfig != null) {
      builder.withSSLConfig(sslConfig);
    }
    return builder.build();
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
        IntStream.range(0, options.ports().size())
            .mapToObj(this::nodeUrl)
            .collect(Collectors.joining(","));
    String line = READY_MARKER + " zk=" + LOOPBACK + ":" + options.zkPort() + " nodes=" + urls;
    if (control != null) {
      line += " control=" + LOOPBACK + ":" + control.getLocalPort();
    }
    return line;
  }

  private String nodeUrl(int index) {
    String scheme = sslConfig == null ? "http://" : "https://";
    return scheme + options.hosts().get(index) + ":" + options.ports().get(index) + CONTEXT;
  }

  /** Accepts control connections on a daemon thread; each connection gets its own thread. */
  private void serveControlChannel() {
    if (control == null) {
      return;
    }
    Thread acceptor =
        new Thread(
            () -> {
              while (!control.isClosed()) {
                try {
                  Socket client = control.accept();
                  Thread handler = new Thread(() -> serve(client), "clickagg-solr-control-client");
                  handler.setDaemon(true);
                  handler.start();
                } catch (IOException e) {
                  if (!control.isClosed()) {
                    System.out.println("clickagg-solr: control channel accept failed: " + e);
                  }
                }
              }
            },
            "clickagg-solr-control");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** Answers each line the client sends with one line, until it closes the connection. */
  private void serve(Socket client) {
    try (client;
        BufferedReader in =
            new BufferedReader(
                new InputStreamReader(client.getInputStream(), StandardCharsets.UTF_8));
        PrintWriter out =
            new PrintWriter(client.getOutputStream(), true, StandardCharsets.UTF_8)) {
      client.setSoTimeout(CONTROL_READ_TIMEOUT_MS);
      String line;
      while ((line = in.readLine()) != null) {
        if (line.isBlank()) {
          continue;
        }
        String answer = oneLine(execute(line.trim()));
        System.out.println("clickagg-solr: control '" + line.trim() + "' -> " + answer);
        System.out.flush();
        out.println(answer);
      }
    } catch (SocketException e) {
      // The client went away (or timed out); nothing to answer.
    } catch (IOException e) {
      System.out.println("clickagg-solr: control connection failed: " + e);
    }
  }

  private static String oneLine(String answer) {
    return answer.replaceAll("[\\r\\n]+", " ");
  }

  private String execute(String command) {
    String[] words = command.split("\\s+");
    try {
      return switch (words[0]) {
        case "status" -> words.length == 1 ? "ok " + nodeStates() : usage(command);
        case "stop" -> words.length == 2 ? stopNode(nodeIndex(words[1])) : usage(command);
        case "start" -> words.length == 2 ? startNode(nodeIndex(words[1])) : usage(command);
        default -> usage(command);
      };
    } catch (IllegalArgumentException e) {
      return "error " + e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "error interrupted";
    } catch (Exception e) {
      return "error " + command + " failed: " + e;
    }
  }

  private static String usage(String command) {
    return "error unknown command '" + command + "' (expected: status | stop <i> | start <i>)";
  }

  private int nodeIndex(String word) {
    int index;
    try {
      index = Integer.parseInt(word);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("node index '" + word + "' is not a number");
    }
    if (index < 0 || index >= nodes.size()) {
      throw new IllegalArgumentException(
          "no node " + index + " (nodes are 0.." + (nodes.size() - 1) + ")");
    }
    return index;
  }

  private String nodeStates() {
    List<String> states = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      states.add(i + "=" + (nodes.get(i).isRunning() ? "running" : "stopped"));
    }
    return String.join(" ", states);
  }

  /** Stops node i and waits until ZooKeeper no longer lists it as live. */
  private String stopNode(int index) throws Exception {
    synchronized (nodeLock) {
      checkNotStopping();
      JettySolrRunner node = nodes.get(index);
      if (!node.isRunning()) {
        throw new IllegalArgumentException("node " + index + " is already stopped");
      }
      long started = System.nanoTime();
      // The node name comes from its CoreContainer, which is gone once stopped.
      String nodeName = node.getNodeName();
      // Also takes it out of the cluster's list, so shutdown() does not stop it twice.
      cluster.stopJettySolrRunner(node);
      cluster
          .getZkStateReader()
          .waitForLiveNodes(
              NODE_LIVE_TIMEOUT_SECONDS,
              TimeUnit.SECONDS,
              (before, live) -> live == null || !live.contains(nodeName));
      String url = nodeUrl(index);
      return "ok stopped " + index + " " + url + " " + millis(started);
    }
  }

  /** Starts node i again on its port and solr home, and waits until it is live in ZooKeeper. */
  private String startNode(int index) throws Exception {
    synchronized (nodeLock) {
      checkNotStopping();
      JettySolrRunner node = nodes.get(index);
      if (node.isRunning()) {
        throw new IllegalArgumentException("node " + index + " is already running");
      }
      long started = System.nanoTime();
      // reusePort: the port the node had before; it is the fixed --ports one anyway.
      cluster.startJettySolrRunner(node, true);
      cluster.waitForNode(node, NODE_LIVE_TIMEOUT_SECONDS);
      String url = nodeUrl(index);
      return "ok started " + index + " " + url + " " + millis(started);
    }
  }

  private void checkNotStopping() {
    if (stopping) {
      throw new IllegalArgumentException("the cluster is shutting down");
    }
  }

  private static String millis(long startedNanos) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startedNanos) + "ms";
  }

  /** Stops the nodes, then ZooKeeper; each step runs even if an earlier one failed. */
  private void stop() {
    stopping = true;
    ServerSocket controlSocket = control;
    if (controlSocket != null) {
      try {
        controlSocket.close();
      } catch (IOException e) {
        // Closing only stops new commands; the nodes stop below either way.
      }
    }
    MiniSolrCloudCluster started = cluster;
    if (started != null) {
      try {
        started.shutdown();
      } catch (Exception e) {
        System.out.println("clickagg-solr: error stopping the Solr nodes: " + e);
      }
      // A node a control 'start' was bringing back is not in the cluster's list yet.
      for (JettySolrRunner node : List.copyOf(nodes)) {
        if (!node.isStopped()) {
          try {
            node.stop();
          } catch (Exception e) {
            System.out.println("clickagg-solr: error stopping a Solr node: " + e);
          }
        }
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

// The local CDE's Hive metastore service (cde_local/metastore.py): what Hive 2.3.10's HiveMetaStore.main and
// startMetaStore do without SASL, SSL or framed transport, but the Thrift server socket is bound to one address
// (127.0.0.1 unless given) instead of every interface: Hive 2.3 has no bind-host setting.
// Usage: java -cp cde_local/java:<pyspark>/jars/* LoopbackMetastore PORT [HOST]
// Left out, as Hive's defaults leave them off: metrics and the compactor/housekeeping threads.
// The .class next to this file is shipped (a JRE 17 runs it); `make metastore-launcher` rebuilds it.

import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.apache.hadoop.hive.common.LogUtils;
import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.conf.HiveConf.ConfVars;
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.IHMSHandler;
import org.apache.hadoop.hive.metastore.TServerSocketKeepAlive;
import org.apache.hadoop.hive.metastore.TSetIpAddressProcessor;
import org.apache.hadoop.hive.metastore.TUGIBasedProcessor;
import org.apache.hadoop.hive.thrift.TUGIContainingTransport;
import org.apache.thrift.TProcessor;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TCompactProtocol;
import org.apache.thrift.protocol.TProtocolFactory;
import org.apache.thrift.server.TServer;
import org.apache.thrift.server.TServerEventHandler;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;
import org.apache.thrift.transport.TTransportFactory;

public final class LoopbackMetastore {
  public static void main(String[] args) throws Exception {
    if (args.length < 1 || args.length > 2) throw new IllegalArgumentException("usage: LoopbackMetastore PORT [HOST]");
    int port = Integer.parseInt(args[0]);
    InetAddress host = InetAddress.getByName(args.length > 1 ? args[1] : "127.0.0.1");
    HiveConf.setLoadMetastoreConfig(true);
    HiveConf conf = new HiveConf(HiveMetaStore.HMSHandler.class); // also reads the -Dhive.* system properties
    if (System.getProperty("log4j.configurationFile") == null) LogUtils.initHiveLog4j(); // hive.root.logger, ...
    for (ConfVars off : new ConfVars[] {ConfVars.METASTORE_USE_THRIFT_SASL, ConfVars.HIVE_METASTORE_USE_SSL,
        ConfVars.METASTORE_USE_THRIFT_FRAMED_TRANSPORT}) {
      if (conf.getBoolVar(off)) throw new IllegalArgumentException(off.varname + "=true is not supported here");
    }
    Field remote = HiveMetaStore.class.getDeclaredField("isMetaStoreRemote"); // as startMetaStore sets it
    remote.setAccessible(true);
    remote.setBoolean(null, true);
    long maxMessage = conf.getLongVar(ConfVars.METASTORESERVERMAXMESSAGESIZE);
    boolean compact = conf.getBoolVar(ConfVars.METASTORE_USE_THRIFT_COMPACT_PROTOCOL);
    TProtocolFactory protocol = compact ? new TCompactProtocol.Factory() : new TBinaryProtocol.Factory();
    TProtocolFactory inputProtocol = compact ? new TCompactProtocol.Factory(maxMessage, maxMessage)
        : new TBinaryProtocol.Factory(true, true, maxMessage, maxMessage);
    IHMSHandler handler = HiveMetaStore.newRetryingHMSHandler(
        new HiveMetaStore.HMSHandler("new db based metaserver", conf, false), conf);
    boolean setUgi = conf.getBoolVar(ConfVars.METASTORE_EXECUTE_SET_UGI); // Hive's default: true
    TProcessor processor = setUgi ? new TUGIBasedProcessor<>(handler) : new TSetIpAddressProcessor<>(handler);
    TTransportFactory transport = setUgi ? new TUGIContainingTransport.Factory() : new TTransportFactory();
    TServerSocket socket = new TServerSocket(new InetSocketAddress(host, port)); // the one change
    if (conf.getBoolVar(ConfVars.METASTORE_TCP_KEEP_ALIVE)) socket = new TServerSocketKeepAlive(socket);
    TServer server = new TThreadPoolServer(new TThreadPoolServer.Args(socket).processor(processor)
        .transportFactory(transport).protocolFactory(protocol).inputProtocolFactory(inputProtocol)
        .minWorkerThreads(conf.getIntVar(ConfVars.METASTORESERVERMINTHREADS))
        .maxWorkerThreads(conf.getIntVar(ConfVars.METASTORESERVERMAXTHREADS)));
    // Hive's own event handler (anonymous class 3): a closed connection's RawStore is shut down.
    Constructor<?> events = Class.forName(HiveMetaStore.class.getName() + "$3").getDeclaredConstructor();
    events.setAccessible(true);
    server.setServerEventHandler((TServerEventHandler) events.newInstance());
    HiveMetaStore.LOG.info("Started the metastore on " + host.getHostAddress() + ":" + port);
    server.serve();
  }
}

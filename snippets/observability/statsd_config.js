// The StatsD daemon's configuration. It is a JavaScript object that statsd
// evaluates, so it can read the environment: statsd_graphite.sh sets these.
{
  address: "127.0.0.1",
  port: Number(process.env.STATSD_PORT || 8125),          // UDP, from the services
  mgmt_address: "127.0.0.1",
  mgmt_port: Number(process.env.STATSD_ADMIN_PORT || 8126),
  graphiteHost: "127.0.0.1",
  graphitePort: Number(process.env.CARBON_PORT || 2003),  // carbon's line receiver
  flushInterval: Number(process.env.STATSD_FLUSH_MS || 10000),
  percentThreshold: [90, 99],  // timers also get upper_90 and upper_99
  deleteIdleStats: true,       // a metric nobody sent this interval is not flushed as 0
  graphite: { legacyNamespace: false },  // stats.counters.*, stats.timers.*, stats.gauges.*
  backends: ["./backends/graphite"]
}

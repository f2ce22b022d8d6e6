//! podlink's client library: exec, attach, port-forward and watch over real
//! connections, driving the sans-IO machines of `podlink-proto` with tokio.

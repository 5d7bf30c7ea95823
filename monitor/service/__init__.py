"""The service that dashboards attach to: `monitor serve` (or `run
--headless`) probes and listens on a Unix socket; `monitor` on the same config
attaches to it, `monitor status` reads its board once.

server:   the listener, a sink of the engine: one session a viewer
snapshot: the board as messages (a viewer's first frames, and after a gap)
viewer:   `SocketEngine`, the dashboard's engine client for a service
paths:    where the socket is, and who may use it
notify:   systemd's readiness protocol
status:   `monitor status`
"""

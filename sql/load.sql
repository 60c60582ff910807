-- The order in which `logmon migrate` applies these files (it reads the \ir lines of this file).
-- A DBA can apply the same set from psql: \i sql/load.sql
\ir latency_bounds.sql
\ir latency_quantile.sql
\ir accepted_ts_range.sql
\ir ensure_partitions.sql
\ir maintain_partitions.sql
\ir record_rollup.sql
\ir logs_rollup_trigger.sql
\ir compact_rollup.sql
\ir window_stats.sql
\ir service_stats.sql
\ir service_timeseries.sql
\ir interval_label.sql
\ir severity_rank.sql
\ir evaluate_rules.sql
\ir record_incident_change.sql
\ir detect_incidents.sql
\ir lock_unresolved_incident.sql
\ir acknowledge_incident.sql
\ir resolve_incident.sql
\ir rebuild_rollup.sql
\ir incident_alert.sql
\ir render_notification.sql
\ir claim_notifications.sql
\ir record_delivery.sql
\ir prune_notifications.sql
\ir grants.sql

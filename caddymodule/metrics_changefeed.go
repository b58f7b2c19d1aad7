package caddymodule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/storage/postgres"
)

// The change feed of a shared (PostgreSQL) store, read at each scrape from
// the store the process has open: whether this replica hears other
// replicas' changes as they commit, and how far behind it may be when it
// does not. Nothing is exported for a Badger store, which has no feed. No
// labels: a process has one store, and the database's name is not the
// metrics' business.
type changeFeedCollector struct {
	listening, lag, sinceNotification, polls, connects *prometheus.Desc
}

// theChangeFeedCollector is registered on every config's registry (one
// value, so a second registration is recognised as the same collector).
var theChangeFeedCollector = &changeFeedCollector{
	listening: prometheus.NewDesc(metricsNamespace+"_store_change_feed_listening",
		"1 while this replica's change-notification connection to PostgreSQL is listening, 0 while it polls instead.", nil, nil),
	lag: prometheus.NewDesc(metricsNamespace+"_store_change_feed_lag_seconds",
		"How long ago this replica last knew it had every other replica's changes (0 while listening; up to the poll interval while polling; growing while the database is unreachable).", nil, nil),
	sinceNotification: prometheus.NewDesc(metricsNamespace+"_store_change_feed_seconds_since_notification",
		"Seconds since the last change notification arrived (absent before the first).", nil, nil),
	polls: prometheus.NewDesc(metricsNamespace+"_store_change_feed_polls_total",
		"Polls of the change versions made while the notification connection was down.", nil, nil),
	connects: prometheus.NewDesc(metricsNamespace+"_store_change_feed_connects_total",
		"(Re)connections of the change-notification connection.", nil, nil),
}

// Describe implements prometheus.Collector.
func (c *changeFeedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.listening
	ch <- c.lag
	ch <- c.sinceNotification
	ch <- c.polls
	ch <- c.connects
}

// Collect implements prometheus.Collector.
func (c *changeFeedCollector) Collect(ch chan<- prometheus.Metric) {
	st := openPostgresStore()
	if st == nil {
		return
	}
	f := st.Feed()
	now := time.Now()
	listening, lag := 0.0, f.Behind.Seconds()
	if f.Listening {
		listening = 1
	}
	ch <- prometheus.MustNewConstMetric(c.listening, prometheus.GaugeValue, listening)
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, max(lag, 0))
	if !f.LastNotification.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.sinceNotification, prometheus.GaugeValue, now.Sub(f.LastNotification).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.polls, prometheus.CounterValue, float64(f.Polls))
	ch <- prometheus.MustNewConstMetric(c.connects, prometheus.CounterValue, float64(f.Connects))
}

// openPostgresStore is the PostgreSQL store this process has open, if any.
func openPostgresStore() *postgres.Store {
	var found *postgres.Store
	openStores.Range(func(_, v any) bool {
		if s, ok := v.(sharedStore); ok {
			if pg, ok := s.Store.(*postgres.Store); ok {
				found = pg
				return false
			}
		}
		return true
	})
	return found
}

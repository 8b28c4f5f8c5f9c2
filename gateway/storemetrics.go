package gateway

import (
	"context"
	"time"

	"github.com/cloverenclave/clover/store"
	"github.com/prometheus/client_golang/prometheus"
)

// InstrumentStore wraps a site's store so that each operation's latency is
// recorded in clover_store_operation_duration_seconds{site,op}.
func (m *Metrics) InstrumentStore(site string, s store.Store) store.Store {
	obs := func(op string) prometheus.Observer { return m.store.WithLabelValues(site, op) }
	return &timedStore{s: s,
		putKey: obs("put_key"), getKey: obs("get_key"), delKey: obs("delete_key"),
		putRec: obs("put_record"), getRec: obs("get_record"), delRec: obs("delete_record"),
		scanRec: obs("scan_records"), scanKey: obs("scan_keys")}
}

type timedStore struct {
	s                                              store.Store
	putKey, getKey, delKey, putRec, getRec, delRec prometheus.Observer
	scanRec, scanKey                               prometheus.Observer
}

var _ store.Store = (*timedStore)(nil)

func since(o prometheus.Observer, t time.Time) { o.Observe(time.Since(t).Seconds()) }

func (t *timedStore) PutKey(ctx context.Context, k store.Key) (store.Key, error) {
	defer since(t.putKey, time.Now())
	return t.s.PutKey(ctx, k)
}

func (t *timedStore) GetKey(ctx context.Context, subject string) (store.Key, error) {
	defer since(t.getKey, time.Now())
	return t.s.GetKey(ctx, subject)
}

func (t *timedStore) DeleteKey(ctx context.Context, subject string) error {
	defer since(t.delKey, time.Now())
	return t.s.DeleteKey(ctx, subject)
}

func (t *timedStore) PutRecord(ctx context.Context, r store.Sealed) error {
	defer since(t.putRec, time.Now())
	return t.s.PutRecord(ctx, r)
}

func (t *timedStore) GetRecord(ctx context.Context, subject string) (store.Sealed, error) {
	defer since(t.getRec, time.Now())
	return t.s.GetRecord(ctx, subject)
}

func (t *timedStore) DeleteRecord(ctx context.Context, subject string) error {
	defer since(t.delRec, time.Now())
	return t.s.DeleteRecord(ctx, subject)
}

func (t *timedStore) ScanRecords(ctx context.Context, after string, limit int) ([]store.Sealed, error) {
	defer since(t.scanRec, time.Now())
	return t.s.ScanRecords(ctx, after, limit)
}

func (t *timedStore) ScanKeys(ctx context.Context, after string, limit int) ([]store.Key, error) {
	defer since(t.scanKey, time.Now())
	return t.s.ScanKeys(ctx, after, limit)
}

func (t *timedStore) Close() error { return t.s.Close() }

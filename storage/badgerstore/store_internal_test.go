package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis/portcullis/storage"
)

func TestTenantPrefixesNeverNest(t *testing.T) {
	tenants := []string{"a", "a:b", "a:", "ab", "a/b", "b", "", "\x01a", "a\x00"}
	for _, x := range tenants {
		for _, y := range tenants {
			if x == y {
				continue
			}
			px, py := tenantPrefix(x), tenantPrefix(y)
			if bytes.HasPrefix(px, py) {
				t.Errorf("prefix of %q (%x) starts with prefix of %q (%x)", x, px, y, py)
			}
		}
	}
}

func TestBadgerLogsGoToZap(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := Open(t.TempDir(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, ok := s.db.Opts().Logger.(zapLogger)
	if !ok {
		t.Fatalf("Badger's logger is %T, want zapLogger", s.db.Opts().Logger)
	}
	logs.TakeAll()
	l.Debugf("debug %d\n", 1)
	l.Infof("info %d\n", 2)
	l.Warningf("warning %d\n", 3)
	l.Errorf("error %d\n", 4)
	got := logs.TakeAll()
	want := []struct {
		level zapcore.Level
		msg   string
	}{{zapcore.WarnLevel, "warning 3"}, {zapcore.ErrorLevel, "error 4"}}
	if len(got) != len(want) {
		t.Fatalf("logged %d entries (%v), want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Message != w.msg || got[i].LoggerName != "badger" {
			t.Errorf("entry %d = %v %q (logger %q), want %v %q (logger badger)", i, got[i].Level, got[i].Message, got[i].LoggerName, w.level, w.msg)
		}
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	ctx := context.Background()
	if err := s.View(ctx, "t", func(storage.ReadTx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("View after Close = %v, want ErrClosed", err)
	}
	if err := s.Update(ctx, "t", func(storage.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
}

// alwaysConflicting returns an Update fn that, on every attempt, reads a
// group and then lets another committed Update rewrite it, so its own
// commit conflicts. onAttempt runs at the start of each attempt.
func alwaysConflicting(s *Store, onAttempt func(n int)) func(storage.Tx) error {
	n := 0
	return func(tx storage.Tx) error {
		n++
		onAttempt(n)
		g, err := tx.GetGroup("g")
		if err != nil {
			return err
		}
		err = s.Update(context.Background(), "t", func(other storage.Tx) error {
			return other.PutGroup(&storage.Group{ID: "g", DisplayName: "rival"})
		})
		if err != nil {
			return err
		}
		g.DisplayName = "mine"
		return tx.PutGroup(g)
	}
}

func TestUpdateRetryIsBounded(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.maxAttempts = 4
	ctx := context.Background()
	if err := s.Update(ctx, "t", func(tx storage.Tx) error {
		return tx.PutGroup(&storage.Group{ID: "g", DisplayName: "start"})
	}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name         string
		cancelAt     int // cancel the context during this attempt (0: never)
		wantErr      error
		wantAttempts int
	}{
		{"retries exhausted", 0, storage.ErrConflict, 4},
		{"cancelled between attempts", 2, context.Canceled, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			attempts := 0
			gen := s.Generation("t")
			err := s.Update(ctx, "t", alwaysConflicting(s, func(n int) {
				attempts = n
				if n == c.cancelAt {
					cancel()
				}
			}))
			if !errors.Is(err, c.wantErr) || attempts != c.wantAttempts {
				t.Fatalf("Update = %v after %d attempts, want %v after %d", err, attempts, c.wantErr, c.wantAttempts)
			}
			// Only the rivals committed.
			if got := s.Generation("t") - gen; got != uint64(attempts) {
				t.Fatalf("Generation moved by %d, want %d (the rivals' commits)", got, attempts)
			}
			var g *storage.Group
			if err := s.View(context.Background(), "t", func(tx storage.ReadTx) error {
				g, err = tx.GetGroup("g")
				return err
			}); err != nil || g.DisplayName != "rival" {
				t.Fatalf("group = %+v, %v; want the rival's write only", g, err)
			}
		})
	}
}

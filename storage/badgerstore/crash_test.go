package badgerstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// crashChildEnv tells a re-executed test binary to act as the writer that
// gets killed.
const crashChildEnv = "BADGERSTORE_CRASH_CHILD_DIR"

// crashWritersEnv is how many goroutines of the child write at once.
const crashWritersEnv = "BADGERSTORE_CRASH_CHILD_WRITERS"

// TestAcknowledgedWritesSurviveKill: a child process writes users, one
// Update at a time or from 16 goroutines at once (so that Updates share
// transactions, see groupcommit.go), and prints each id once Update
// returned nil; the parent kills it with SIGKILL mid-stream (no Close, no
// flush), reopens the directory and finds every acknowledged user. This is
// the storage half of "a 2xx survives kill -9".
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		writers, _ := strconv.Atoi(os.Getenv(crashWritersEnv))
		crashChild(dir, max(writers, 1))
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for _, writers := range []int{1, 16} {
		t.Run(fmt.Sprintf("writers=%d", writers), func(t *testing.T) {
			testAcknowledgedWritesSurviveKill(t, writers)
		})
	}
}

func testAcknowledgedWritesSurviveKill(t *testing.T, writers int) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcknowledgedWritesSurviveKill$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashWritersEnv, writers))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 300
	var acked []string
	grouped := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "grouped "); ok {
			grouped, _ = strconv.Atoi(n)
		}
		if id, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked = append(acked, id)
			if len(acked) == killAfter {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("child acknowledged only %d writes before exiting", len(acked))
	}
	if writers > 1 && grouped == 0 {
		t.Errorf("no write of the %d writers was acknowledged from a shared transaction", writers)
	}

	s, err := badgerstore.Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	err = s.View(context.Background(), "acme", func(tx storage.ReadTx) error {
		for _, id := range acked {
			u, err := tx.GetUser(id)
			if err != nil {
				return fmt.Errorf("acknowledged user %s: %w", id, err)
			}
			if _, err := tx.UserByUserName(u.UserName); err != nil {
				return fmt.Errorf("index of acknowledged user %s: %w", id, err)
			}
		}
		n, err := tx.CountUsers()
		if err != nil || n < len(acked) {
			return fmt.Errorf("CountUsers = %d, %v; want >= %d", n, err, len(acked))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// crashChild writes users from writers goroutines until it is killed
// (bounded, in case it is not), printing each acknowledged id and how many
// writes so far committed in a shared transaction.
func crashChild(dir string, writers int) {
	s, err := badgerstore.Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range 100_000 / writers {
				id := fmt.Sprintf("user-%02d-%06d", g, i)
				err := s.Update(context.Background(), "acme", func(tx storage.Tx) error {
					if err := tx.PutUser(&storage.User{ID: id, UserName: id + "@example.com"}); err != nil {
						return err
					}
					return tx.AppendEvent(storage.Event{Type: storage.EventUserCreated, ResourceID: id})
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(w, "grouped %d\nacked %s\n", badgerstore.Grouped(s), id)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

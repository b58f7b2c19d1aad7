package badgerstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/storage"
	"github.com/portcullis/portcullis/storage/badgerstore"
)

// crashChildEnv tells a re-executed test binary to act as the writer that
// gets killed.
const crashChildEnv = "BADGERSTORE_CRASH_CHILD_DIR"

// TestAcknowledgedWritesSurviveKill: a child process writes users one Update
// at a time and prints each id once Update returned nil; the parent kills
// it with SIGKILL mid-stream (no Close, no flush), reopens the directory and
// finds every acknowledged user. This is the storage half of "a 2xx
// survives kill -9".
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcknowledgedWritesSurviveKill$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
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
	sc := bufio.NewScanner(out)
	for sc.Scan() {
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

// crashChild writes users until it is killed (bounded, in case it is not).
func crashChild(dir string) {
	s, err := badgerstore.Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range 100_000 {
		id := fmt.Sprintf("user-%06d", i)
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
		fmt.Fprintf(w, "acked %s\n", id)
		w.Flush()
	}
	os.Exit(0)
}

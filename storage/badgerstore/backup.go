package badgerstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// A backup file is one header line, then Badger's backup stream (a
// sequence of length-prefixed protobuf key-value lists), then an end line.
// The header says what the file is before a byte is loaded, so Restore
// refuses a stray file, or a backup of a newer schema, with a clear
// message; the end line tells a complete file from one cut short between
// two lists, which Badger's stream alone cannot.
const (
	backupMagic = "portcullis-badger-backup"
	backupEnd   = "\nportcullis-badger-backup-end\n"
)

// maxBackupHeader bounds the header line Restore reads.
const maxBackupHeader = 128

func backupHeader() string {
	return fmt.Sprintf("%s schema=%d\n", backupMagic, SchemaVersion)
}

// Backup writes a consistent copy of the whole store (every tenant) to w
// while it keeps serving: Badger streams one snapshot, so writes committed
// after Backup started are not in it and writes before it all are. Close
// waits for a running Backup.
func (s *Store) Backup(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if _, err := io.WriteString(w, backupHeader()); err != nil {
		return err
	}
	stream := s.db.NewStream()
	stream.LogPrefix = "portcullis backup"
	if _, err := stream.Backup(w, 0); err != nil {
		return fmt.Errorf("badgerstore: backup: %w", err)
	}
	_, err := io.WriteString(w, backupEnd)
	return err
}

// ErrNotEmpty is returned by Restore when the target store holds data.
var ErrNotEmpty = errors.New("badgerstore: the store is not empty")

// Restore loads a file written by Backup into the store in dir, which must
// be new or empty (a directory that does not exist yet, an empty one, or
// a store that holds no data). It runs offline: the store must not be
// open, in this process or another (Badger's directory lock refuses it).
// The restored store is then opened once, which migrates an older schema
// to this binary's, so the next Open starts at once.
func Restore(dir string, r io.Reader, logger *zap.Logger) error {
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("badger")
	br := bufio.NewReaderSize(r, 64<<10)
	if err := readBackupHeader(br, dir); err != nil {
		return err
	}
	body := &endCheckingReader{r: br}
	if err := loadInto(dir, body, logger); err != nil {
		return err
	}
	s, err := Open(dir, logger)
	if err != nil {
		return fmt.Errorf("badgerstore: opening the restored store: %w", err)
	}
	return s.Close()
}

// readBackupHeader checks the header line of a backup file.
func readBackupHeader(br *bufio.Reader, dir string) error {
	line, err := br.Peek(maxBackupHeader)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("badgerstore: reading the backup: %w", err)
	}
	head, _, found := strings.Cut(string(line), "\n")
	magic, schema, _ := strings.Cut(head, " schema=")
	if !found || magic != backupMagic {
		return fmt.Errorf("badgerstore: not a Portcullis backup (it does not start with %q)", backupMagic)
	}
	version, err := strconv.Atoi(schema)
	if err != nil || version < 1 {
		return fmt.Errorf("badgerstore: backup header %q: bad schema version", head)
	}
	if version > SchemaVersion {
		return newerSchemaError("the backup", version)
	}
	_, err = br.Discard(len(head) + 1)
	return err
}

// loadInto loads a Badger backup stream into the database in dir, which
// must hold no data.
func loadInto(dir string, r *endCheckingReader, logger *zap.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("badgerstore: %w", err)
	}
	db, err := badger.Open(badgerOptions(dir, logger, DefaultOptions, 2))
	if err != nil {
		return fmt.Errorf("badgerstore: open %s (a running gateway holds its store open: stop it, or restore into a new directory): %w", dir, err)
	}
	var empty bool
	err = db.View(func(txn *badger.Txn) error {
		empty, err = isEmpty(txn)
		return err
	})
	if err == nil && !empty {
		err = fmt.Errorf("%w: %s holds data; restore into a new or empty directory (or move this one aside first)", ErrNotEmpty, dir)
	}
	// A store opened before but never written holds its schema key; drop
	// it with every version, so the backup's own (or its absence, in a
	// version 1 backup) is what the loaded store says.
	if err == nil {
		err = db.DropAll()
	}
	if err == nil {
		if err = db.Load(r, 16); err == nil {
			err = r.complete()
		}
		if err != nil {
			err = fmt.Errorf("badgerstore: loading the backup (is the file complete?): %w", err)
			// Leave the store empty, not half restored, so a second
			// try with a good file is not refused.
			if derr := db.DropAll(); derr != nil {
				err = fmt.Errorf("%w; and emptying %s again failed, remove it before retrying: %v", err, dir, derr)
			}
		}
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("badgerstore: closing %s after the restore: %w", dir, cerr)
	}
	return err
}

// endCheckingReader passes on everything but the last len(backupEnd) bytes
// of r, which it holds back to check, at EOF, that they are the end line.
type endCheckingReader struct {
	r    io.Reader
	held []byte // the last bytes read, not yet passed on
	eof  bool
}

func (e *endCheckingReader) Read(p []byte) (int, error) {
	for !e.eof && len(e.held) <= len(backupEnd) {
		buf := make([]byte, 32<<10)
		n, err := e.r.Read(buf)
		e.held = append(e.held, buf[:n]...)
		if errors.Is(err, io.EOF) {
			e.eof = true
		} else if err != nil {
			return 0, err
		}
	}
	avail := len(e.held) - len(backupEnd)
	if avail <= 0 {
		return 0, io.EOF
	}
	n := copy(p, e.held[:avail])
	e.held = e.held[n:]
	return n, nil
}

// complete says whether what was held back at EOF is the end line.
func (e *endCheckingReader) complete() error {
	if !e.eof || string(e.held) != backupEnd {
		return errors.New("the backup has no end line: it was cut short")
	}
	return nil
}

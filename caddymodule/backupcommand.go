package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/portcullis/portcullis/storage/badgerstore"
)

// backupUsage is the part of `caddy portcullis --help` about backups.
const backupUsage = `
  caddy portcullis backup FILE
      Writes a consistent backup of the whole store (every tenant) to FILE
      while the gateway serves, through the admin API. FILE is replaced
      only once the backup is complete; it is created readable by its
      owner only (it holds token and session hashes).

  caddy portcullis restore FILE [--dir DIR]
      Restores a backup into an empty store, offline: stop the gateway
      first (it holds the store's lock), or restore into a new directory
      and point the config's "storage badger DIR" at it. The store
      directory is --dir, else the one in --config, else Caddy's default
      (portcullis under Caddy's data directory). A backup of an older
      release is migrated; one of a newer release is refused.
`

// addBackupCommands adds backup and restore to `caddy portcullis`.
func addBackupCommands(cmd *cobra.Command) {
	cmd.AddCommand(&cobra.Command{
		Use:   "backup FILE",
		Short: "Writes an online, consistent backup of the store to FILE",
		Args:  cobra.ExactArgs(1),
		RunE:  runBackup,
	})
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restores a backup into an empty store (offline)",
		Args:  cobra.ExactArgs(1),
		RunE:  runRestore,
	}
	restore.Flags().String("dir", "", "Store directory to restore into (default: from --config, else Caddy's default)")
	cmd.AddCommand(restore)
}

func runBackup(c *cobra.Command, args []string) error {
	file := args[0]
	addr, err := adminAddress(c)
	if err != nil {
		return err
	}
	resp, err := caddycmd.AdminAPIRequest(addr, http.MethodGet, backupPath, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Written beside FILE and renamed over it at the end, so a failed
	// backup never replaces a good one.
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".partial-*")
	if err != nil {
		return err
	}
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		if status := resp.Trailer.Get(backupStatusTrailer); status != backupComplete {
			err = fmt.Errorf("the gateway did not finish the backup (status %q)", status)
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("backup not written to %s: %w", file, err)
	}
	fmt.Fprintf(c.ErrOrStderr(), "Backup of the store written to %s (%d bytes)\n", file, n)
	return nil
}

func runRestore(c *cobra.Command, args []string) error {
	dir, err := restoreDir(c)
	if err != nil {
		return err
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := badgerstore.Restore(dir, f, caddy.Log()); err != nil {
		return err
	}
	fmt.Fprintf(c.ErrOrStderr(), "Restored %s into %s; the gateway can start on it (storage badger %s)\n", args[0], dir, dir)
	return nil
}

// restoreDir is the store directory restore writes to: --dir, else the
// Badger directory of the --config file, else Caddy's default.
func restoreDir(c *cobra.Command) (string, error) {
	f := c.Flags()
	dir, _ := f.GetString("dir")
	configFile, _ := f.GetString("config")
	adapter, _ := f.GetString("adapter")
	if dir == "" && configFile != "" {
		var err error
		if dir, err = storeDirOfConfig(configFile, adapter); err != nil {
			return "", err
		}
	}
	if dir == "" {
		dir = defaultBadgerDir()
	}
	return filepath.Abs(dir)
}

// storeDirOfConfig reads the Badger directory a config file names ("" if
// it names none, which means the default).
func storeDirOfConfig(configFile, adapter string) (string, error) {
	raw, _, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", configFile, err)
	}
	var cfg struct {
		Apps struct {
			Portcullis struct {
				Storage struct {
					Backend string `json:"backend"`
					Dir     string `json:"dir"`
				} `json:"storage"`
			} `json:"portcullis"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("reading %s: %w", configFile, err)
	}
	st := cfg.Apps.Portcullis.Storage
	if st.Backend != "" && st.Backend != "badger" {
		return "", errors.New("restore knows the badger backend only; restore other backends with their own tools")
	}
	return st.Dir, nil
}

// adminAddress is the admin API address the command talks to.
func adminAddress(c *cobra.Command) (string, error) {
	f := c.Flags()
	addrFlag, _ := f.GetString("address")
	configFlag, _ := f.GetString("config")
	adapterFlag, _ := f.GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(addrFlag, nil, configFlag, adapterFlag)
	if err != nil {
		return "", fmt.Errorf("finding the admin address: %v", err)
	}
	return addr, nil
}

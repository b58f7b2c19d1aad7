//go:build !linux

package badgerstore

import "go.uber.org/zap"

// trimMappedFiles does nothing off Linux: MADV_PAGEOUT and /proc are
// Linux's (see mappedpages_linux.go).
func trimMappedFiles(string, int64, *zap.Logger) {}

//go:build !linux

package badgerstore

// TrimValueLogPages does nothing off Linux (mappedpages_other.go).
func TrimValueLogPages(*Store) {}

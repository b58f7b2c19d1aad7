//go:build !linux

package badgerstore

// lowerThreadPriority does nothing off Linux, where the trimmer does
// nothing either (mappedpages_other.go).
func lowerThreadPriority() {}

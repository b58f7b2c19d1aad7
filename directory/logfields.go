package directory

import (
	"time"

	"go.uber.org/zap"
)

func zapString(k, v string) zap.Field { return zap.String(k, v) }

func retryFields(err error, wait time.Duration) []zap.Field {
	return []zap.Field{zap.Error(err), zap.Duration("wait", wait)}
}

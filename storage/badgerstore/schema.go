package badgerstore

import "fmt"

const currentSchemaVersion = 1

func releaseFixtureName(version int) string { return fmt.Sprintf("store-v%d.backup", version) }

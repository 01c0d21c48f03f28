package extender

import (
	"time"

	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/jetson/usage"
)

// Cache is usage.Cache.
//
// Deprecated: temporary, for descheduler/ until it calls usage.New; delete at merge.
type Cache = usage.Cache

// NewCache is usage.New.
//
// Deprecated: temporary, for descheduler/ until it calls usage.New; delete at merge.
func NewCache(cfg jetson.Config, ttl time.Duration) *Cache { return usage.New(cfg, ttl) }

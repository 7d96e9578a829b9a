package sluice

import "strings"

// Config is the plugin's settings from the job file as key/value strings;
// tables and arrays arrive as JSON text.
type Config map[string]string

// Require is the value of key, or a fatal error naming it.
func (c Config) Require(key string) (string, error) {
	value, ok := c[key]
	if !ok {
		return "", Fatal("missing config key `%s`", key)
	}
	return value, nil
}

// List is the value of key as a comma-separated list (empty when unset).
func (c Config) List(key string) []string {
	var items []string
	for _, item := range strings.Split(c[key], ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

package config

import (
	"reflect"
	"strings"
)

// SettingPaths lists the YAML path of every setting of a Config, in field
// order: entra.tenant_id, routes[].name, ... (a route's field as
// routes[].x). The tests that hold the docs, the example configuration and
// the variables to the settings all walk this one list.
func SettingPaths() []string { return settingPaths(reflect.TypeFor[Config](), "") }

func settingPaths(t reflect.Type, prefix string) []string {
	var paths []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			paths = append(paths, settingPaths(ft, prefix+tag+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			paths = append(paths, settingPaths(ft.Elem(), prefix+tag+"[].")...)
		default:
			paths = append(paths, prefix+tag)
		}
	}
	return paths
}

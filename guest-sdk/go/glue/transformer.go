//go:build wasip1

// Package export_sluice_plugin_transformer connects the generated bindings
// of the transform world to the plugin's Transform function. The build
// places it beside the bindings; plugins never import it.
package export_sluice_plugin_transformer

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	witTypes "go.bytecodealliance.org/pkg/wit/types"

	"sluice"
	plugin "wit_component/plugin"
	"wit_component/sluice_plugin_host"
	wit "wit_component/sluice_plugin_types"
)

var config sluice.Config

func init() {
	// Until wasmtime#14318 ships, a collection that starts inside a call can
	// trap ("cannot leave component instance"): collect only between calls.
	debug.SetGCPercent(-1)
	sluice.Host = host{}
}

// Init keeps the job's configuration for every batch.
func Init(entries []witTypes.Tuple2[string, string]) witTypes.Result[witTypes.Unit, wit.PluginError] {
	config = make(sluice.Config, len(entries))
	for _, entry := range entries {
		config[entry.F0] = entry.F1
	}
	return witTypes.Ok[witTypes.Unit, wit.PluginError](witTypes.Unit{})
}

// Process runs the plugin's Transform over one batch.
func Process(input wit.Batch) (result witTypes.Result[wit.Transformed, wit.PluginError]) {
	// The previous call's results have been lifted by now: reclaim them.
	runtime.GC()
	defer func() {
		if panicked := recover(); panicked != nil {
			result = failure(sluice.Fatal("plugin panicked: %v", panicked))
		}
	}()
	batch := fromWit(input)
	if err := plugin.Transform(batch, config); err != nil {
		return failure(err)
	}
	batch.Compact()
	return witTypes.Ok[wit.Transformed, wit.PluginError](wit.Transformed{Batch: toWit(batch)})
}

// Snapshot: Go transforms are stateless.
func Snapshot() witTypes.Option[[]uint8] {
	return witTypes.None[[]uint8]()
}

// Restore accepts only the empty state of a stateless transform.
func Restore(state []uint8) witTypes.Result[witTypes.Unit, wit.PluginError] {
	if len(state) != 0 {
		return witTypes.Err[witTypes.Unit](wit.MakePluginErrorFatal("a Go transform keeps no state to restore"))
	}
	return witTypes.Ok[witTypes.Unit, wit.PluginError](witTypes.Unit{})
}

func failure(err error) witTypes.Result[wit.Transformed, wit.PluginError] {
	var typed *sluice.Error
	if !errors.As(err, &typed) {
		typed = &sluice.Error{Kind: sluice.KindFatal, Message: err.Error()}
	}
	var payload wit.PluginError
	switch typed.Kind {
	case sluice.KindTransient:
		payload = wit.MakePluginErrorTransient(typed.Message)
	case sluice.KindInvalidInput:
		payload = wit.MakePluginErrorInvalidInput(wit.InvalidInput{Message: typed.Message, Rows: typed.Rows})
	default:
		payload = wit.MakePluginErrorFatal(typed.Message)
	}
	return witTypes.Err[wit.Transformed](payload)
}

// fromWit views the host's batch as SDK arrays; slices are shared, not copied.
func fromWit(input wit.Batch) *sluice.Batch {
	batch := &sluice.Batch{NumRows: int(input.NumRows), Arrays: make([]*sluice.Array, len(input.Arrays))}
	for i, array := range input.Arrays {
		batch.Arrays[i] = arrayFromWit(array)
	}
	batch.Columns = make([]sluice.Column, len(input.Columns))
	for i, column := range input.Columns {
		batch.Columns[i] = sluice.Column{Name: column.Name, Nullable: column.Nullable, Array: batch.Arrays[column.Array]}
	}
	return batch
}

func arrayFromWit(array wit.Array) *sluice.Array {
	out := &sluice.Array{Len: int(array.Len), Validity: array.Validity.SomeOr(nil)}
	data := array.Data
	switch data.Tag() {
	case wit.ArrayData_Boolean:
		out.Type, out.Bits = sluice.Bool, data.Boolean()
	case wit.ArrayData_Int32:
		out.Type, out.Int32s = sluice.Int32, data.Int32()
	case wit.ArrayData_Int64:
		out.Type, out.Int64s = sluice.Int64, data.Int64()
	case wit.ArrayData_Uint32:
		out.Type, out.Uint32s = sluice.Uint32, data.Uint32()
	case wit.ArrayData_Uint64:
		out.Type, out.Uint64s = sluice.Uint64, data.Uint64()
	case wit.ArrayData_Float32:
		out.Type, out.Float32s = sluice.Float32, data.Float32()
	case wit.ArrayData_Float64:
		out.Type, out.Float64s = sluice.Float64, data.Float64()
	case wit.ArrayData_Utf8:
		out.Type, out.Offsets, out.Bytes = sluice.Utf8, data.Utf8().Offsets, data.Utf8().Bytes
	case wit.ArrayData_Binary:
		out.Type, out.Offsets, out.Bytes = sluice.Binary, data.Binary().Offsets, data.Binary().Bytes
	case wit.ArrayData_Timestamp:
		ts := data.Timestamp()
		out.Type, out.Unit, out.Int64s = sluice.Timestamp, sluice.TimeUnit(ts.Unit), ts.Values
		if ts.Timezone.IsSome() {
			zone := ts.Timezone.Some()
			out.Timezone = &zone
		}
	case wit.ArrayData_List:
		list := data.List()
		out.Type, out.Offsets, out.Child, out.ChildNullable = sluice.List, list.Offsets, int(list.Child), list.ChildNullable
	case wit.ArrayData_Struct:
		out.Type = sluice.Struct
		for _, field := range data.Struct() {
			out.Fields = append(out.Fields, sluice.Field{Name: field.Name, Nullable: field.Nullable, Child: int(field.Child)})
		}
	default:
		panic(fmt.Sprintf("unknown array type tag %d", data.Tag()))
	}
	return out
}

// toWit gives the batch back in the contract's form, sharing its slices.
func toWit(batch *sluice.Batch) wit.Batch {
	out := wit.Batch{NumRows: uint32(batch.NumRows), Arrays: make([]wit.Array, len(batch.Arrays))}
	index := make(map[*sluice.Array]uint32, len(batch.Arrays))
	for i, array := range batch.Arrays {
		out.Arrays[i] = arrayToWit(array)
		index[array] = uint32(i)
	}
	out.Columns = make([]wit.Column, len(batch.Columns))
	for i, column := range batch.Columns {
		out.Columns[i] = wit.Column{Name: column.Name, Nullable: column.Nullable, Array: index[column.Array]}
	}
	return out
}

func arrayToWit(array *sluice.Array) wit.Array {
	out := wit.Array{Len: uint32(array.Len), Validity: witTypes.None[[]uint8]()}
	if array.Validity != nil {
		out.Validity = witTypes.Some(array.Validity)
	}
	switch array.Type {
	case sluice.Bool:
		out.Data = wit.MakeArrayDataBoolean(array.Bits)
	case sluice.Int32:
		out.Data = wit.MakeArrayDataInt32(array.Int32s)
	case sluice.Int64:
		out.Data = wit.MakeArrayDataInt64(array.Int64s)
	case sluice.Uint32:
		out.Data = wit.MakeArrayDataUint32(array.Uint32s)
	case sluice.Uint64:
		out.Data = wit.MakeArrayDataUint64(array.Uint64s)
	case sluice.Float32:
		out.Data = wit.MakeArrayDataFloat32(array.Float32s)
	case sluice.Float64:
		out.Data = wit.MakeArrayDataFloat64(array.Float64s)
	case sluice.Utf8:
		out.Data = wit.MakeArrayDataUtf8(wit.VarData{Offsets: array.Offsets, Bytes: array.Bytes})
	case sluice.Binary:
		out.Data = wit.MakeArrayDataBinary(wit.VarData{Offsets: array.Offsets, Bytes: array.Bytes})
	case sluice.Timestamp:
		zone := witTypes.None[string]()
		if array.Timezone != nil {
			zone = witTypes.Some(*array.Timezone)
		}
		out.Data = wit.MakeArrayDataTimestamp(wit.TimestampData{Unit: wit.TimeUnit(array.Unit), Timezone: zone, Values: array.Int64s})
	case sluice.List:
		out.Data = wit.MakeArrayDataList(wit.ListData{Offsets: array.Offsets, Child: uint32(array.Child), ChildNullable: array.ChildNullable})
	case sluice.Struct:
		fields := make([]wit.StructField, len(array.Fields))
		for i, field := range array.Fields {
			fields[i] = wit.StructField{Name: field.Name, Nullable: field.Nullable, Child: uint32(field.Child)}
		}
		out.Data = wit.MakeArrayDataStruct(fields)
	default:
		panic(fmt.Sprintf("sluice: array of unknown type %v", array.Type))
	}
	return out
}

// host binds the SDK's host functions to the component's imports.
type host struct{}

func (host) Log(level sluice.Level, message string, fields map[string]string) {
	pairs := make([]witTypes.Tuple2[string, string], 0, len(fields))
	for key, value := range fields {
		pairs = append(pairs, witTypes.Tuple2[string, string]{F0: key, F1: value})
	}
	sluice_plugin_host.Log(sluice_plugin_host.Level(level), message, pairs)
}

func (host) CounterAdd(name string, delta uint64) {
	sluice_plugin_host.CounterAdd(name, delta)
}

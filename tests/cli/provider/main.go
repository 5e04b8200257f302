// pulumi-resource-stackhouse-test: a small resource provider for the end-to-end suite, so that
// real `pulumi up` runs create, update, read and delete real things without any download.
//
// One resource type, stackhouse-test:index:Item. Each item is a file in $STACKHOUSE_TEST_ITEMS_DIR
// (a directory the test owns) named by the item's id and holding its `value`, so `refresh` sees
// drift when a test edits or deletes the file and `pulumi import` reads an item that exists.
// Inputs that shape a test run: `fail` (create and update fail, as a real cloud error would),
// `delayMs` (create and update take this long, so an update can be cancelled or killed while it
// runs), `padBytes` (an output of that many bytes, to grow the state: pseudo-random base64 that
// gzip cannot shrink much, derived from the resource's name so that the same program on two
// stacks yields the same state).
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	pkgName  = "stackhouse-test"
	version  = "1.0.0"
	itemType = "stackhouse-test:index:Item"
)

const schema = `{
  "name": "stackhouse-test",
  "version": "1.0.0",
  "resources": {
    "stackhouse-test:index:Item": {
      "description": "A file in $STACKHOUSE_TEST_ITEMS_DIR named by the item's id.",
      "inputProperties": {
        "value": {"type": "string"},
        "fail": {"type": "boolean"},
        "delayMs": {"type": "integer"},
        "padBytes": {"type": "integer"}
      },
      "properties": {
        "value": {"type": "string"},
        "fail": {"type": "boolean"},
        "delayMs": {"type": "integer"},
        "padBytes": {"type": "integer"},
        "padding": {"type": "string"},
        "path": {"type": "string"}
      },
      "required": ["path"]
    }
  }
}`

var marshal = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

type itemProvider struct {
	pulumirpc.UnimplementedResourceProviderServer
}

func main() {
	err := provider.Main(pkgName, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &itemProvider{}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func itemsDir() (string, error) {
	dir := os.Getenv("STACKHOUSE_TEST_ITEMS_DIR")
	if dir == "" {
		return "", fmt.Errorf("STACKHOUSE_TEST_ITEMS_DIR is not set")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// itemPath refuses ids that would leave the items directory (an imported id is user input).
func itemPath(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return "", fmt.Errorf("invalid item id %q", id)
	}
	dir, err := itemsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, id), nil
}

func plain(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

func boolInput(m resource.PropertyMap, key string) bool {
	v := plain(m[resource.PropertyKey(key)])
	return v.IsBool() && v.BoolValue()
}

func intInput(m resource.PropertyMap, key string) int {
	v := plain(m[resource.PropertyKey(key)])
	if v.IsNumber() && v.NumberValue() > 0 {
		return int(v.NumberValue())
	}
	return 0
}

func stringInput(m resource.PropertyMap, key string) string {
	v := plain(m[resource.PropertyKey(key)])
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, marshal)
}

// padding is n bytes of base64 from a generator seeded by name.
func padding(name string, n int) string {
	seed := sha256.Sum256([]byte(name))
	gen := mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:16])))
	raw := make([]byte, n*3/4+8)
	for i := 0; i+8 <= len(raw); i += 8 {
		binary.LittleEndian.PutUint64(raw[i:], gen.Uint64())
	}
	return base64.StdEncoding.EncodeToString(raw)[:n]
}

// apply makes the item real: waits, fails when asked to, writes the file, and returns outputs.
func apply(ctx context.Context, urn, id string, inputs resource.PropertyMap, preview bool) (*structpb.Struct, error) {
	outputs := inputs.Copy()
	if preview {
		if _, ok := outputs["padding"]; !ok && intInput(inputs, "padBytes") > 0 {
			outputs["padding"] = resource.MakeComputed(resource.NewProperty(""))
		}
		outputs["path"] = resource.MakeComputed(resource.NewProperty(""))
		return plugin.MarshalProperties(outputs, marshal)
	}
	if d := intInput(inputs, "delayMs"); d > 0 {
		select {
		case <-time.After(time.Duration(d) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if boolInput(inputs, "fail") {
		return nil, fmt.Errorf("item refused: fail is set")
	}
	path, err := itemPath(id)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(stringInput(inputs, "value")), 0o644); err != nil {
		return nil, err
	}
	if n := intInput(inputs, "padBytes"); n > 0 {
		outputs["padding"] = resource.NewProperty(padding(resource.URN(urn).Name(), n))
	} else {
		delete(outputs, "padding")
	}
	outputs["path"] = resource.NewProperty(path)
	return plugin.MarshalProperties(outputs, marshal)
}

func (p *itemProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *itemProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schema}, nil
}

func (p *itemProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *itemProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *itemProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

func (p *itemProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if req.GetType() != itemType {
		return nil, fmt.Errorf("unknown resource type %q", req.GetType())
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *itemProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var diffs []string
	for _, key := range []string{"value", "fail", "delayMs", "padBytes"} {
		k := resource.PropertyKey(key)
		if !olds[k].DeepEquals(news[k]) {
			diffs = append(diffs, key)
		}
	}
	if len(diffs) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: diffs}, nil
}

func (p *itemProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	inputs, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	id := ""
	if !req.GetPreview() {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id = "item-" + hex.EncodeToString(b[:])
	}
	outputs, err := apply(ctx, req.GetUrn(), id, inputs, req.GetPreview())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: outputs}, nil
}

func (p *itemProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	inputs, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	outputs, err := apply(ctx, req.GetUrn(), req.GetId(), inputs, req.GetPreview())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: outputs}, nil
}

// Read reports the item as the file holds it: gone when the file is gone, the file's contents as
// `value` otherwise (an import or a refresh after someone edited it).
func (p *itemProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	path, err := itemPath(req.GetId())
	if err != nil {
		return nil, err
	}
	contents, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &pulumirpc.ReadResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	inputs, err := unmarshal(req.GetInputs())
	if err != nil {
		return nil, err
	}
	value := resource.NewProperty(string(contents))
	state["value"], state["path"] = value, resource.NewProperty(path)
	inputs["value"] = value
	outputs, err := plugin.MarshalProperties(state, marshal)
	if err != nil {
		return nil, err
	}
	ins, err := plugin.MarshalProperties(inputs, marshal)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: outputs, Inputs: ins}, nil
}

func (p *itemProvider) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	path, err := itemPath(req.GetId())
	if err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (p *itemProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

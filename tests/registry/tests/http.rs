//! The stand-in's REST API over plain HTTP: status codes, error bodies, media types, ids,
//! versions, lookup, config and deletes, as Confluent answers them.

use serde_json::{Value, json};
use sluice_registry_stand_in::StandIn;

const VND: &str = "application/vnd.schemaregistry.v1+json";

const USER_V1: &str =
    r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;
const USER_V2: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#;

/// A raw HTTP client for one stand-in.
struct Api {
    agent: ureq::Agent,
    base: String,
    _registry: StandIn,
}

/// Status, `Content-Type` and JSON body of a response.
struct Reply {
    status: u16,
    content_type: String,
    body: Value,
}

impl Api {
    fn start() -> Api {
        let registry = StandIn::start().unwrap();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        Api {
            agent,
            base: registry.url(),
            _registry: registry,
        }
    }

    fn get(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        reply(self.agent.get(&url).call())
    }

    fn delete(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        reply(self.agent.delete(&url).call())
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, VND, &body.to_string())
    }

    fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, VND, &body.to_string())
    }

    fn send(&self, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self.agent.post(&url),
            "PUT" => self.agent.put(&url),
            other => panic!("no body for {other}"),
        };
        reply(
            request
                .header("Content-Type", content_type)
                .header("Accept", VND)
                .send(body),
        )
    }

    /// Registers an AVRO schema and returns its id.
    fn register(&self, subject: &str, schema: &str) -> u64 {
        let r = self.post(
            &format!("/subjects/{subject}/versions"),
            &json!({ "schema": schema }),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["id"].as_u64().unwrap()
    }
}

fn reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = result.expect("the stand-in answers");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.body_mut().read_to_string().unwrap();
    Reply {
        status: response.status().as_u16(),
        content_type,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn assert_error(reply: &Reply, status: u16, error_code: u64) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error_code"], error_code, "{}", reply.body);
    assert!(reply.body["message"].is_string(), "{}", reply.body);
    assert_eq!(reply.content_type, VND);
}

#[test]
fn errors_carry_confluent_codes_and_messages() {
    let api = Api::start();
    let r = api.get("/subjects/nope/versions");
    assert_error(&r, 404, 40401);
    assert_eq!(r.body["message"], "Subject 'nope' not found.");

    api.register("users", USER_V1);
    assert_error(&api.get("/subjects/users/versions/7"), 404, 40402);
    assert_error(&api.get("/subjects/users/versions/abc"), 422, 42202);
    assert_error(&api.get("/subjects/users/versions/0"), 422, 42202);
    assert_error(&api.get("/subjects/nope/versions/1"), 404, 40401);
    assert_error(&api.get("/schemas/ids/99"), 404, 40403);
    assert_error(
        &api.post("/subjects/users", &json!({ "schema": USER_V2 })),
        404,
        40403,
    );
    assert_error(
        &api.post("/subjects/nope", &json!({ "schema": USER_V1 })),
        404,
        40401,
    );

    let unknown_type = r#"{"type":"record","name":"X","fields":[{"name":"a","type":"Nope"}]}"#;
    for (schema, schema_type) in [
        (unknown_type, "AVRO"),
        ("not json", "AVRO"),
        ("message M { int32 a = 1", "PROTOBUF"),
        ("[1, 2", "JSON"),
        ("{}", "XML"),
    ] {
        let r = api.post(
            "/subjects/bad/versions",
            &json!({ "schema": schema, "schemaType": schema_type }),
        );
        assert_error(&r, 422, 42201);
    }
    assert_error(&api.post("/subjects/bad/versions", &json!({})), 422, 42201);
    assert_error(
        &api.send("POST", "/subjects/x/versions", VND, "{oops"),
        400,
        400,
    );
    assert_error(
        &api.put("/config", &json!({ "compatibility": "SIDEWAYS" })),
        422,
        42203,
    );
    assert_error(&api.get("/nowhere"), 404, 404);
    assert_error(&api.delete("/config"), 405, 405);
    assert_error(
        &api.send("POST", "/subjects/x/versions", "text/plain", "{}"),
        415,
        415,
    );
    // Nothing failed registration left a subject behind.
    assert_eq!(api.get("/subjects").body, json!(["users"]));
}

#[test]
fn plain_json_media_type_is_accepted() {
    let api = Api::start();
    let r = api.send(
        "POST",
        "/subjects/users/versions",
        "application/json",
        &json!({ "schema": USER_V1 }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, VND);
    assert_eq!(r.body, json!({ "id": 1 }));
}

#[test]
fn identical_schemas_get_one_id_and_one_version() {
    let api = Api::start();
    let id = api.register("a", USER_V1);
    let reformatted =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(USER_V1).unwrap()).unwrap();
    assert_eq!(
        api.register("b", &reformatted),
        id,
        "whitespace does not count"
    );
    assert_eq!(api.register("a", USER_V1), id);
    assert_eq!(api.get("/subjects/a/versions").body, json!([1]));

    let v2 = api.register("a", USER_V2);
    assert_ne!(v2, id);
    assert_eq!(api.get("/subjects/a/versions").body, json!([1, 2]));
    assert_eq!(api.register("b", USER_V2), v2);

    let as_json = api.post(
        "/subjects/c/versions",
        &json!({ "schema": USER_V1, "schemaType": "JSON" }),
    );
    assert_ne!(
        as_json.body["id"].as_u64(),
        Some(id),
        "the type is part of identity"
    );

    assert_eq!(
        api.get(&format!("/schemas/ids/{id}/versions")).body,
        json!([{ "subject": "a", "version": 1 }, { "subject": "b", "version": 1 }])
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{id}/subjects")).body,
        json!(["a", "b"])
    );
    assert_eq!(api.get("/subjects").body, json!(["a", "b", "c"]));
}

#[test]
fn versions_schemas_and_lookup_have_confluent_shapes() {
    let api = Api::start();
    let id = api.register("users", USER_V1);
    let v1 = json!({ "subject": "users", "version": 1, "id": id, "schema": USER_V1 });
    assert_eq!(api.get("/subjects/users/versions/1").body, v1);
    assert_eq!(api.get("/subjects/users/versions/latest").body, v1);
    assert_eq!(api.get("/subjects/users/versions/-1").body, v1);
    assert_eq!(
        api.post("/subjects/users", &json!({ "schema": USER_V1 }))
            .body,
        v1
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{id}")).body,
        json!({ "schema": USER_V1 }),
        "no schemaType for AVRO, no empty references"
    );
    let raw = api.get("/subjects/users/versions/1/schema");
    assert_eq!(raw.body, serde_json::from_str::<Value>(USER_V1).unwrap());

    let id2 = api.register("users", USER_V2);
    assert_eq!(api.get("/subjects/users/versions/latest").body["id"], id2);

    let proto = "syntax = \"proto3\";\nmessage Ping { int64 at = 1; }\n";
    let r = api.post(
        "/subjects/pings/versions",
        &json!({ "schema": proto, "schemaType": "PROTOBUF" }),
    );
    let proto_id = r.body["id"].clone();
    assert_eq!(
        api.get(&format!("/schemas/ids/{proto_id}")).body,
        json!({ "schemaType": "PROTOBUF", "schema": proto })
    );
    assert_eq!(
        api.get("/subjects/pings/versions/1").body["schemaType"],
        "PROTOBUF"
    );
    assert_eq!(
        api.get("/schemas/types").body,
        json!(["JSON", "PROTOBUF", "AVRO"])
    );
}

#[test]
fn subjects_with_slashes_are_percent_decoded() {
    let api = Api::start();
    let id = api.register("team%2Fusers", USER_V1);
    assert_eq!(api.get("/subjects").body, json!(["team/users"]));
    assert_eq!(api.get("/subjects/team%2Fusers/versions/1").body["id"], id);
}

#[test]
fn references_must_exist_and_supply_named_types_and_imports() {
    let api = Api::start();
    let address = r#"{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"string"}]}"#;
    let customer = r#"{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"address","type":"acme.Address"}]}"#;
    api.register("address", address);
    let reference = json!([{ "name": "acme.Address", "subject": "address", "version": 1 }]);

    let without = api.post(
        "/subjects/customer/versions",
        &json!({ "schema": customer }),
    );
    assert_error(&without, 422, 42201);
    let with = api.post(
        "/subjects/customer/versions",
        &json!({ "schema": customer, "references": reference }),
    );
    assert_eq!(with.status, 200, "{}", with.body);
    let customer_id = with.body["id"].clone();
    assert_eq!(
        api.get(&format!("/schemas/ids/{customer_id}")).body["references"],
        reference
    );
    let latest = api.post(
        "/subjects/other/versions",
        &json!({ "schema": customer,
                 "references": [{ "name": "acme.Address", "subject": "address", "version": -1 }] }),
    );
    assert_eq!(
        latest.body["id"], customer_id,
        "version -1 pins the latest version"
    );
    let dangling = api.post(
        "/subjects/customer2/versions",
        &json!({ "schema": customer,
                 "references": [{ "name": "acme.Address", "subject": "nope", "version": 1 }] }),
    );
    assert_error(&dangling, 422, 42201);

    let money = "syntax = \"proto3\";\npackage acme;\nmessage Money { int64 units = 1; }\n";
    let order = "syntax = \"proto3\";\npackage acme;\nimport \"acme/money.proto\";\nmessage Order { acme.Money total = 1; }\n";
    let r = api.post(
        "/subjects/money/versions",
        &json!({ "schema": money, "schemaType": "PROTOBUF" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let without = api.post(
        "/subjects/order/versions",
        &json!({ "schema": order, "schemaType": "PROTOBUF" }),
    );
    assert_error(&without, 422, 42201);
    let with = api.post(
        "/subjects/order/versions",
        &json!({ "schema": order, "schemaType": "PROTOBUF",
                 "references": [{ "name": "acme/money.proto", "subject": "money", "version": 1 }] }),
    );
    assert_eq!(with.status, 200, "{}", with.body);

    let well_known = "syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Seen { google.protobuf.Timestamp at = 1; }\n";
    let r = api.post(
        "/subjects/seen/versions",
        &json!({ "schema": well_known, "schemaType": "PROTOBUF" }),
    );
    assert_eq!(
        r.status, 200,
        "well-known types need no reference: {}",
        r.body
    );
}

#[test]
fn config_is_global_with_subject_overrides() {
    let api = Api::start();
    assert_eq!(
        api.get("/config").body,
        json!({ "compatibilityLevel": "BACKWARD" })
    );
    let r = api.put("/config", &json!({ "compatibility": "FULL" }));
    assert_eq!(r.body, json!({ "compatibility": "FULL" }));
    assert_eq!(
        api.get("/config").body,
        json!({ "compatibilityLevel": "FULL" })
    );

    assert_error(&api.get("/config/users"), 404, 40408);
    assert_eq!(
        api.get("/config/users?defaultToGlobal=true").body,
        json!({ "compatibilityLevel": "FULL" })
    );
    let r = api.put("/config/users", &json!({ "compatibility": "none" }));
    assert_eq!(r.body, json!({ "compatibility": "NONE" }));
    assert_eq!(
        api.get("/config/users").body,
        json!({ "compatibilityLevel": "NONE" })
    );
    assert_eq!(
        api.get("/config").body,
        json!({ "compatibilityLevel": "FULL" })
    );
}

#[test]
fn deletes_are_soft_first_and_permanent_after() {
    let api = Api::start();
    let id = api.register("users", USER_V1);
    api.register("users", USER_V2);

    assert_error(&api.delete("/subjects/users?permanent=true"), 404, 40405);
    assert_eq!(api.delete("/subjects/users").body, json!([1, 2]));
    assert_error(&api.get("/subjects/users/versions"), 404, 40401);
    assert_error(&api.get("/subjects/users/versions/latest"), 404, 40401);
    assert_eq!(api.get("/subjects").body, json!([]));
    assert_eq!(api.get("/subjects?deleted=true").body, json!(["users"]));
    assert_eq!(
        api.get("/subjects/users/versions?deleted=true").body,
        json!([1, 2])
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{id}?deleted=true")).body["schema"],
        USER_V1,
        "consumers of old records can still read the schema"
    );

    // Registering again starts after the deleted versions, with the same id.
    assert_eq!(api.register("users", USER_V1), id);
    assert_eq!(api.get("/subjects/users/versions").body, json!([3]));

    api.register("users", USER_V2);
    assert_eq!(api.delete("/subjects/users/versions/3").body, json!(3));
    assert_error(&api.delete("/subjects/users/versions/3"), 404, 40402);
    assert_eq!(api.get("/subjects/users/versions").body, json!([4]));
    assert_eq!(api.delete("/subjects/users").body, json!([4]));
    assert_eq!(
        api.delete("/subjects/users?permanent=true").body,
        json!([1, 2, 3, 4])
    );
    assert_eq!(api.get("/subjects?deleted=true").body, json!([]));
    assert_error(
        &api.get(&format!("/schemas/ids/{id}?deleted=true")),
        404,
        40403,
    );
}

#[test]
fn stops_when_dropped() {
    let registry = StandIn::start().unwrap();
    let address = registry.address();
    drop(registry);
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "nothing listens on {address} after drop"
    );
}

#[test]
fn the_binary_serves_on_the_port_it_is_given() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_schema-registry-stand-in"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let answer = ureq::get(&format!("{url}/subjects"))
        .call()
        .map(|mut r| r.body_mut().read_to_string());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(answer.unwrap().unwrap(), "[]", "from {line}");
}

#[test]
fn a_protobuf_schema_reads_as_a_serialized_file_descriptor_with_format_serialized() {
    use base64::Engine as _;
    use protox::prost::Message as _;
    let api = Api::start();
    let proto = "syntax = \"proto3\";\npackage shop;\nmessage Order { int64 id = 1; Status status = 2; }\nenum Status { NEW = 0; PAID = 1; }\n";
    let r = api.post(
        "/subjects/orders-value/versions",
        &json!({ "schema": proto, "schemaType": "PROTOBUF" }),
    );
    let id = r.body["id"].clone();
    for path in [
        format!("/schemas/ids/{id}?format=serialized"),
        "/subjects/orders-value/versions/latest?format=serialized".to_owned(),
    ] {
        let schema = api.get(&path).body["schema"].as_str().unwrap().to_owned();
        let bytes = base64::prelude::BASE64_STANDARD
            .decode(&schema)
            .unwrap_or_else(|e| panic!("{path}: not base64 ({e}): {schema}"));
        let file =
            protox::prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .unwrap();
        assert_eq!(file.package(), "shop", "{path}");
        let messages: Vec<&str> = file.message_type.iter().map(|m| m.name()).collect();
        assert_eq!(messages, ["Order"], "{path}");
        assert_eq!(file.enum_type[0].name(), "Status", "{path}");
    }
    // Without it, and for other types, the text as registered.
    assert_eq!(api.get(&format!("/schemas/ids/{id}")).body["schema"], proto);
    let avro = api.register("users", USER_V1);
    assert_eq!(
        api.get(&format!("/schemas/ids/{avro}?format=serialized"))
            .body["schema"],
        USER_V1
    );
}

/// Every construct the stand-in prints back from a serialized descriptor.
const RICH_PROTO: &str = r#"syntax = "proto3";
package hc.orders;
import "google/protobuf/timestamp.proto";
option java_package = "com.example.orders";
message Order {
  int64 id = 1;
  Status status = 2;
  map<string, int64> quantities = 3;
  google.protobuf.Timestamp placed = 4;
  Address ship_to = 5;
  optional string note = 6;
  oneof payment { string card = 7; Voucher voucher = 8; }
  repeated double prices = 9 [packed = false];
  reserved 20 to 29, 100;
  reserved "legacy";
  message Address { string city = 1; repeated string lines = 2; }
  message Voucher { bytes code = 1; }
  enum Status { NEW = 0; PAID = 1; reserved 7 to 9; }
}
"#;

#[test]
fn a_protobuf_schema_registered_as_a_base64_file_descriptor_is_the_same_schema_as_its_text() {
    use base64::Engine as _;
    use protox::prost::Message as _;
    let api = Api::start();
    // What Confluent's Python serializer sends: the compiled file, base64.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.proto"), RICH_PROTO).unwrap();
    let compiled = protox::compile(["orders.proto"], [dir.path()]).unwrap();
    let file = compiled
        .file
        .iter()
        .find(|f| f.name() == "orders.proto")
        .unwrap();
    let serialized = base64::prelude::BASE64_STANDARD.encode(file.encode_to_vec());
    let by_descriptor = api.post(
        "/subjects/orders-value/versions",
        &json!({ "schema": serialized, "schemaType": "PROTOBUF" }),
    );
    assert_eq!(by_descriptor.status, 200, "{}", by_descriptor.body);
    // Served back as .proto text, as Confluent's server does.
    let printed = api.get("/subjects/orders-value/versions/1").body["schema"].clone();
    assert!(
        printed.as_str().unwrap().contains("message Order {"),
        "{printed}"
    );
    // The same schema sent as text is the same schema: the printed text compiled to the
    // same descriptor.
    let by_text = api.post(
        "/subjects/orders-copy-value/versions",
        &json!({ "schema": RICH_PROTO, "schemaType": "PROTOBUF" }),
    );
    assert_eq!(
        by_text.body["id"],
        by_descriptor.body["id"],
        "printed:\n{}",
        printed.as_str().unwrap()
    );
    // Not base64 and not a descriptor: refused as an invalid schema.
    for bad in ["bm90IGEgZGVzY3JpcHRvcg==", "%%%"] {
        let r = api.post(
            "/subjects/bad-value/versions",
            &json!({ "schema": bad, "schemaType": "PROTOBUF" }),
        );
        assert_error(&r, 422, 42201);
    }
}

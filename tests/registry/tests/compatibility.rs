//! Compatibility levels and the rules per schema type, over plain HTTP: registration answers
//! 409 where the level forbids a schema, and `/compatibility` says so beforehand.

use serde_json::{Value, json};
use sluice_registry_stand_in::StandIn;

struct Api {
    agent: ureq::Agent,
    base: String,
    _registry: StandIn,
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

    /// Sends JSON, returns status and JSON body.
    fn send(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self.agent.post(&url),
            "PUT" => self.agent.put(&url),
            other => panic!("no body for {other}"),
        };
        let mut response = request
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .send(body.to_string())
            .unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        (
            response.status().as_u16(),
            serde_json::from_str(&text).unwrap(),
        )
    }

    fn level(&self, subject: &str, level: &str) {
        let (status, _) = self.send(
            "PUT",
            &format!("/config/{subject}"),
            &json!({ "compatibility": level }),
        );
        assert_eq!(status, 200);
    }

    /// Registers, returning the status and body.
    fn register(&self, subject: &str, schema_type: &str, schema: &Value) -> (u16, Value) {
        let text = match schema {
            Value::String(text) => text.clone(),
            json => json.to_string(),
        };
        self.send(
            "POST",
            &format!("/subjects/{subject}/versions"),
            &json!({ "schema": text, "schemaType": schema_type }),
        )
    }

    fn accepts(&self, subject: &str, schema_type: &str, schema: &Value) {
        let (status, body) = self.register(subject, schema_type, schema);
        assert_eq!(status, 200, "{schema} should be accepted: {body}");
    }

    fn rejects(&self, subject: &str, schema_type: &str, schema: &Value) {
        let (status, body) = self.register(subject, schema_type, schema);
        assert_eq!(status, 409, "{schema} should be rejected: {body}");
        assert_eq!(body["error_code"], 409);
        assert!(
            body["message"].as_str().unwrap().contains("incompatible"),
            "{body}"
        );
    }
}

fn record(fields: Value) -> Value {
    json!({ "type": "record", "name": "User", "fields": fields })
}

#[test]
fn backward_accepts_a_new_field_with_default_and_rejects_one_without() {
    let api = Api::start();
    api.accepts(
        "u",
        "AVRO",
        &record(json!([{ "name": "name", "type": "string" }])),
    );

    let without_default = record(json!([
        { "name": "name", "type": "string" },
        { "name": "age", "type": "int" }
    ]));
    let check = |path: &str| {
        api.send(
            "POST",
            path,
            &json!({ "schema": without_default.to_string() }),
        )
    };
    assert_eq!(
        check("/compatibility/subjects/u/versions/latest"),
        (200, json!({ "is_compatible": false }))
    );
    let (status, verbose) = check("/compatibility/subjects/u/versions?verbose=true");
    assert_eq!(status, 200);
    assert_eq!(verbose["is_compatible"], false);
    assert!(
        verbose["messages"].to_string().contains("age"),
        "the messages name the field: {verbose}"
    );
    api.rejects("u", "AVRO", &without_default);

    let with_default = record(json!([
        { "name": "name", "type": "string" },
        { "name": "age", "type": "int", "default": 0 }
    ]));
    assert_eq!(
        api.send(
            "POST",
            "/compatibility/subjects/u/versions/1",
            &json!({ "schema": with_default.to_string() })
        ),
        (200, json!({ "is_compatible": true }))
    );
    api.accepts("u", "AVRO", &with_default);

    // Level NONE lets anything through.
    api.level("u", "NONE");
    api.accepts("u", "AVRO", &json!("\"string\""));
}

#[test]
fn transitive_levels_check_every_earlier_version() {
    let api = Api::start();
    let v1 = record(json!([{ "name": "a", "type": "int" }]));
    let v2 = record(json!([{ "name": "b", "type": "string", "default": "" }]));
    // Readable with v2's data, not with v1's (`a` was an int).
    let v3 = record(json!([
        { "name": "b", "type": "string", "default": "" },
        { "name": "a", "type": "string", "default": "" }
    ]));
    for (subject, level) in [("latest-only", "BACKWARD"), ("all", "BACKWARD_TRANSITIVE")] {
        api.level(subject, level);
        api.accepts(subject, "AVRO", &v1);
        api.accepts(subject, "AVRO", &v2);
    }
    api.accepts("latest-only", "AVRO", &v3);
    api.rejects("all", "AVRO", &v3);
}

#[test]
fn forward_and_full_check_that_old_readers_can_read_new_data() {
    let api = Api::start();
    let v1 = record(json!([
        { "name": "a", "type": "int" },
        { "name": "b", "type": "int", "default": 0 }
    ]));
    let drops_b = record(json!([{ "name": "a", "type": "int" }]));
    let drops_a = record(json!([{ "name": "b", "type": "int", "default": 0 }]));
    let adds_c = record(json!([
        { "name": "a", "type": "int" },
        { "name": "b", "type": "int", "default": 0 },
        { "name": "c", "type": "int" }
    ]));
    api.level("f", "FORWARD");
    api.accepts("f", "AVRO", &v1);
    api.rejects("f", "AVRO", &drops_a);
    api.accepts("f", "AVRO", &adds_c);

    api.level("full", "FULL");
    api.accepts("full", "AVRO", &v1);
    api.rejects("full", "AVRO", &adds_c);
    api.accepts("full", "AVRO", &drops_b);
}

#[test]
fn protobuf_rejects_changed_field_types_and_removed_messages() {
    let api = Api::start();
    let v1 = "syntax = \"proto3\";\nmessage Order { string id = 1; int64 units = 2; }\nmessage Note { string text = 1; }\n";
    api.accepts("o", "PROTOBUF", &json!(v1));
    api.rejects(
        "o",
        "PROTOBUF",
        &json!("syntax = \"proto3\";\nmessage Order { string id = 1; string units = 2; }\nmessage Note { string text = 1; }\n"),
    );
    api.rejects(
        "o",
        "PROTOBUF",
        &json!("syntax = \"proto3\";\nmessage Order { string id = 1; repeated int64 units = 2; }\nmessage Note { string text = 1; }\n"),
    );
    api.rejects(
        "o",
        "PROTOBUF",
        &json!("syntax = \"proto3\";\nmessage Order { string id = 1; int64 units = 2; }\n"),
    );
    // Same schema, other whitespace and comments: the existing id, no new version.
    let (_, first) = api.register("o", "PROTOBUF", &json!(v1));
    let (_, again) = api.register(
        "o",
        "PROTOBUF",
        &json!(format!("// orders\n{}", v1.replace("; ", ";\n  "))),
    );
    assert_eq!(first, again);
    api.accepts(
        "o",
        "PROTOBUF",
        &json!("syntax = \"proto3\";\nmessage Order { string id = 1; int64 units = 2; string memo = 3; }\nmessage Note { string text = 1; }\nmessage Extra {}\n"),
    );
}

#[test]
fn json_rejects_new_required_properties_without_default_and_type_changes() {
    let api = Api::start();
    let object = |properties: Value, required: Value| json!({ "type": "object", "properties": properties, "required": required });
    api.accepts(
        "j",
        "JSON",
        &object(json!({ "id": { "type": "integer" } }), json!(["id"])),
    );
    api.rejects(
        "j",
        "JSON",
        &object(
            json!({ "id": { "type": "integer" }, "name": { "type": "string" } }),
            json!(["id", "name"]),
        ),
    );
    api.rejects(
        "j",
        "JSON",
        &object(json!({ "id": { "type": "string" } }), json!(["id"])),
    );
    api.accepts(
        "j",
        "JSON",
        &object(
            json!({ "id": { "type": "number" }, "name": { "type": "string", "default": "" } }),
            json!(["id", "name"]),
        ),
    );
}

#[test]
fn avro_checks_look_inside_referenced_types() {
    let api = Api::start();
    let address = |fields: Value| json!({ "type": "record", "name": "Address", "namespace": "acme", "fields": fields });
    let city = json!({ "name": "city", "type": "string" });
    let zip = json!({ "name": "zip", "type": "string" });
    api.accepts("address", "AVRO", &address(json!([city])));
    api.level("address-next", "NONE");
    api.accepts("address-next", "AVRO", &address(json!([city, zip])));

    let customer = json!({ "type": "record", "name": "Customer", "namespace": "acme",
                           "fields": [{ "name": "home", "type": "Address" },
                                      { "name": "work", "type": "Address" }] });
    let register = |subject: &str, address_subject: &str| {
        api.send(
            "POST",
            &format!("/subjects/{subject}/versions"),
            &json!({ "schema": customer.to_string(),
                     "references": [{ "name": "acme.Address", "subject": address_subject, "version": 1 }] }),
        )
    };
    assert_eq!(register("customer", "address").0, 200);
    // Same Customer text, but its Address gained a field without a default.
    let (status, body) = register("customer", "address-next");
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("zip"), "{body}");

    // Moving the type from inline to a reference is no change at all.
    let inline = json!({ "type": "record", "name": "Customer", "namespace": "acme",
                         "fields": [{ "name": "home", "type": address(json!([city])) },
                                    { "name": "work", "type": "Address" }] });
    api.accepts("moved", "AVRO", &inline);
    assert_eq!(register("moved", "address").0, 200);
}

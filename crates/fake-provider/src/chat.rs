//! Completions for a valid key, in each provider's wire format: whole, or streamed with a
//! pause between chunks so a test can tell the first chunk from the last.

use std::time::Duration;

use serde_json::{json, Value};

use crate::reply::ResponseTemplate;
use crate::responders::{header, json_response, query, Flavour};
use crate::server::Shared;
use crate::{ReceivedRequest as Request, AZURE_DEPLOYMENT, CHUNK_DELAY_HEADER, COMPLETION_PIECES};

/// `created` of every OpenAI-style answer.
const CREATED: u64 = 1_700_000_000;

/// The whole completion text.
pub(crate) fn completion_text() -> String {
    COMPLETION_PIECES.concat()
}

/// The valid key's answer to a completion request of `f`.
pub(crate) fn success(f: Flavour, request: &Request, shared: &Shared) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let gap = header(request, CHUNK_DELAY_HEADER)
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or_else(|| shared.chunk_delay(), Duration::from_millis);
    let path = request.url.path();
    let answer = match f {
        Flavour::Anthropic => anthropic(&body, gap),
        Flavour::Gemini | Flavour::Vertex => {
            let (model, method) = path
                .rsplit('/')
                .next()
                .and_then(|last| last.split_once(':'))
                .unwrap_or(("gemini", "generateContent"));
            let sse = query(request, "alt").as_deref() == Some("sse");
            gemini(model, method == "streamGenerateContent", sse, gap)
        }
        Flavour::Bedrock => bedrock(path),
        Flavour::Azure => azure(path, &body, gap),
        _ => openai(&body, gap),
    };
    // A cookie the gateway must not pass back, and an id it must.
    answer
        .insert_header("x-request-id", "req_fake")
        .insert_header("set-cookie", "fake-session=1; Path=/; HttpOnly")
}

fn model_of(body: &Value, fallback: &str) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or(fallback)
        .to_owned()
}

fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool) == Some(true)
}

fn sse_data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

fn sse_event(event: &str, value: &Value) -> String {
    format!("event: {event}\ndata: {value}\n\n")
}

fn openai(body: &Value, gap: Duration) -> ResponseTemplate {
    let model = model_of(body, "gpt-4o");
    if !wants_stream(body) {
        return json_response(
            200,
            json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": completion_text() },
                    "finish_reason": "stop"
                }],
                "usage": { "prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15 }
            }),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        sse_data(&json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }]
        }))
    };
    let mut chunks: Vec<String> = COMPLETION_PIECES
        .iter()
        .enumerate()
        .map(|(n, piece)| {
            let delta = if n == 0 {
                json!({ "role": "assistant", "content": piece })
            } else {
                json!({ "content": piece })
            };
            chunk(delta, Value::Null)
        })
        .collect();
    chunks.push(chunk(json!({}), json!("stop")) + "data: [DONE]\n\n");
    ResponseTemplate::streamed("text/event-stream", chunks, gap)
}

fn azure(path: &str, body: &Value, gap: Duration) -> ResponseTemplate {
    if !path.contains(&format!("/deployments/{AZURE_DEPLOYMENT}/")) {
        return json_response(
            404,
            json!({ "error": {
                "code": "DeploymentNotFound",
                "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."
            }}),
        );
    }
    let empty = body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty {
        // The deployment exists and rejects the empty message list.
        return json_response(
            400,
            json!({ "error": {
                "message": "[] is too short - 'messages'",
                "type": "invalid_request_error",
                "param": null,
                "code": null
            }}),
        );
    }
    openai(body, gap)
}

fn anthropic(body: &Value, gap: Duration) -> ResponseTemplate {
    let model = model_of(body, "claude-sonnet-4-5");
    let usage = json!({ "input_tokens": 9, "output_tokens": 6 });
    if !wants_stream(body) {
        return json_response(
            200,
            json!({
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{ "type": "text", "text": completion_text() }],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": usage
            }),
        );
    }
    let delta = |piece: &str| {
        sse_event(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": piece } }),
        )
    };
    let mut chunks: Vec<String> = COMPLETION_PIECES.iter().map(|p| delta(p)).collect();
    if let Some(first) = chunks.first_mut() {
        let start = sse_event(
            "message_start",
            &json!({ "type": "message_start", "message": {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": 9, "output_tokens": 1 }
            }}),
        ) + &sse_event(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
        );
        first.insert_str(0, &start);
    }
    chunks.push(
        sse_event(
            "content_block_stop",
            &json!({ "type": "content_block_stop", "index": 0 }),
        ) + &sse_event(
            "message_delta",
            &json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn", "stop_sequence": null }, "usage": { "output_tokens": 6 } }),
        ) + &sse_event("message_stop", &json!({ "type": "message_stop" })),
    );
    ResponseTemplate::streamed("text/event-stream", chunks, gap)
}

fn gemini(model: &str, stream: bool, sse: bool, gap: Duration) -> ResponseTemplate {
    let candidate = |text: &str, last: bool| {
        let mut c = json!({
            "candidates": [{
                "content": { "role": "model", "parts": [{ "text": text }] },
                "index": 0
            }],
            "modelVersion": model
        });
        if last {
            c["candidates"][0]["finishReason"] = json!("STOP");
            c["usageMetadata"] =
                json!({ "promptTokenCount": 9, "candidatesTokenCount": 6, "totalTokenCount": 15 });
        }
        c
    };
    if !stream {
        return json_response(200, candidate(&completion_text(), true));
    }
    let last = COMPLETION_PIECES.len() - 1;
    let parts: Vec<Value> = COMPLETION_PIECES
        .iter()
        .enumerate()
        .map(|(n, piece)| candidate(piece, n == last))
        .collect();
    if sse {
        let chunks = parts.iter().map(sse_data).collect();
        return ResponseTemplate::streamed("text/event-stream", chunks, gap);
    }
    // Without `alt=sse` the answer is one JSON array, sent element by element.
    let chunks = parts
        .iter()
        .enumerate()
        .map(|(n, part)| {
            let open = if n == 0 { "[" } else { ",\r\n" };
            let close = if n == last { "]" } else { "" };
            format!("{open}{part}{close}")
        })
        .collect();
    ResponseTemplate::streamed("application/json", chunks, gap)
}

fn bedrock(path: &str) -> ResponseTemplate {
    if path.ends_with("/invoke") {
        return json_response(
            200,
            json!({
                "id": "msg_bdrk_fake",
                "type": "message",
                "role": "assistant",
                "content": [{ "type": "text", "text": completion_text() }],
                "stop_reason": "end_turn",
                "usage": { "input_tokens": 9, "output_tokens": 6 }
            }),
        );
    }
    json_response(
        200,
        json!({
            "output": { "message": { "role": "assistant", "content": [{ "text": completion_text() }] } },
            "stopReason": "end_turn",
            "usage": { "inputTokens": 9, "outputTokens": 6, "totalTokens": 15 },
            "metrics": { "latencyMs": 1 }
        }),
    )
}

//! Layers every request passes through, outermost first: request id and tracing span, HTTP
//! metrics, security headers, problem+json for bare error answers, CORS, time-out, body limit.

pub mod http_metrics;
pub mod problem_fallback;
pub mod request_id;
pub mod security_headers;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{Problem, ProblemField};

/// The document's frame; every path is collected from the routers themselves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sapine API",
        description = "Self-hosted bot hosting. Errors are RFC 9457 problem+json documents with a \
                       stable `code`; lists use cursor pagination (`limit`, `cursor`, `next_cursor`).",
    ),
    components(schemas(Problem, ProblemField)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, tokens and password recovery"),
        (name = "account", description = "The signed-in user's own account"),
        (name = "admin", description = "User administration (admins only)"),
        (name = "bots", description = "Bots: create, upload code, run, stop, secrets, crash history and metrics"),
        (name = "logs", description = "Bots' logs: pages, live streams (WebSocket, SSE) and downloads"),
        (name = "service", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

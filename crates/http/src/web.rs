//! The settings page and the `<llm-settings>` web component: static files embedded in the
//! binary (nothing loaded from the internet), served under `/settings/` with a strict content
//! security policy; `/` and `/settings` redirect there. Not part of the OpenAPI document.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::ServiceConfig;
use actix_web::{web, HttpRequest, HttpResponse};

/// Every file of the page: name, content type, content.
const FILES: [(&str, &str, &str); 11] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    ("app.js", JS, include_str!("../web/app.js")),
    ("api.js", JS, include_str!("../web/api.js")),
    ("dom.js", JS, include_str!("../web/dom.js")),
    ("words.js", JS, include_str!("../web/words.js")),
    ("owner-view.js", JS, include_str!("../web/owner-view.js")),
    (
        "provider-card.js",
        JS,
        include_str!("../web/provider-card.js"),
    ),
    (
        "llm-settings.js",
        JS,
        include_str!("../web/llm-settings.js"),
    ),
    (
        "llm-settings.css",
        CSS,
        include_str!("../web/llm-settings.css"),
    ),
    ("style.css", CSS, include_str!("../web/style.css")),
    ("icon.svg", "image/svg+xml", include_str!("../web/icon.svg")),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// No inline script or style, nothing from elsewhere, forms never navigate; framing as the
/// operator allows (`frame-ancestors`, appended per response).
const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'";

/// The page's routes.
pub fn routes(config: &mut ServiceConfig) {
    config
        .route("/", web::get().to(to_page))
        .route("/settings", web::get().to(to_page))
        .route("/settings/", web::get().to(page_file))
        .route("/settings/{file}", web::get().to(page_file));
}

async fn to_page() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/settings/"))
        .finish()
}

async fn page_file(req: HttpRequest) -> HttpResponse {
    let framing = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .map(|s| s.frame_ancestors.0.join(" "))
        .filter(|list| !list.is_empty());
    let name = req.match_info().get("file").unwrap_or("index.html");
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    let mut res = HttpResponse::Ok();
    match &framing {
        // Pages of the listed origins may frame the page; X-Frame-Options cannot list them.
        Some(origins) => res.insert_header((
            "content-security-policy",
            format!("{CSP}; frame-ancestors {origins}"),
        )),
        None => res
            .insert_header((
                "content-security-policy",
                format!("{CSP}; frame-ancestors 'none'"),
            ))
            .insert_header(("x-frame-options", "DENY")),
    };
    for (name, value) in [
        ("content-type", *content_type),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-cache"),
        // An application on another origin loads the component as a module script, which
        // browsers fetch in CORS mode; the files hold no secret and no user data.
        ("access-control-allow-origin", "*"),
        ("cross-origin-resource-policy", "cross-origin"),
    ] {
        res.insert_header((name, HeaderValue::from_static(value)));
    }
    res.body(*body)
}

/// Whether a path is one of the page's (which the trailing-slash rewrite leaves alone).
pub fn is_page_path(path: &str) -> bool {
    path == "/" || path == "/settings" || path.starts_with("/settings/")
}

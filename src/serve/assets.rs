//! The page's files, embedded in the binary (no network, nothing to build):
//! plain HTML, CSS and JavaScript in `page/`.

/// `(content type, bytes)` of the asset at `path`, if it is one.
pub fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", include_bytes!("page/index.html")),
        "/app.js" => ("text/javascript; charset=utf-8", include_bytes!("page/app.js")),
        "/style.css" => ("text/css; charset=utf-8", include_bytes!("page/style.css")),
        "/favicon.svg" | "/favicon.ico" => ("image/svg+xml", include_bytes!("page/favicon.svg")),
        _ => return None,
    })
}

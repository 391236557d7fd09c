//! A browser without JavaScript, for the sign-in, consent and device pages: keeps cookies per
//! name and `Path` and sends those whose path covers the request's, reads a page's form
//! fields, posts forms back, and follows no redirect by itself. Shared by the engine's
//! authorize tests and the gateway's NPR profile tests (`#[path]`-included by both).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::time::Duration;

/// A response as a browser sees it.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    /// The `<input>` fields of the page's form, by name.
    pub fn fields(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for tag in self.body.split("<input").skip(1) {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let attr = |name: &str| {
                let key = format!(" {name}=\"");
                tag.find(&key).map(|i| {
                    let rest = &tag[i + key.len()..];
                    unescape(&rest[..rest.find('"').unwrap_or(rest.len())])
                })
            };
            if let Some(n) = attr("name") {
                out.insert(n, attr("value").unwrap_or_default());
            }
        }
        out
    }

    /// The redirect's target, before its query.
    pub fn target(&self) -> &str {
        let loc = self.location.as_deref().expect("a redirect");
        loc.split_once('?').map_or(loc, |(t, _)| t)
    }

    /// The redirect's query, decoded.
    pub fn query(&self) -> HashMap<String, String> {
        query_of(self.location.as_deref().expect("a redirect"))
    }

    /// The `Set-Cookie` header of the cookie `name`, whole.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }
}

/// The query of `url`, decoded.
pub fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:port`, which request paths are appended to.
    base: String,
    /// (name, path) → value.
    jar: HashMap<(String, String), String>,
}

impl Browser {
    /// A browser with no cookies, for the server at `base`.
    pub fn new(base: String) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_string(),
            jar: HashMap::new(),
        }
    }

    /// Puts a cookie in the jar for every path, as a page or an attacker could.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar
            .insert((name.to_string(), "/".to_string()), value.to_string());
    }

    fn cookie_header(&self, path: &str) -> String {
        let path = path.split('?').next().unwrap_or(path);
        self.jar
            .iter()
            .filter(|((_, p), _)| {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| p.ends_with('/') || rest.starts_with('/'))
            })
            .map(|((n, _), v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let mut parts = c.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let path = parts
                .find_map(|a| a.strip_prefix("Path="))
                .unwrap_or("/")
                .to_string();
            self.jar.insert((name.to_string(), path), value.to_string());
        }
        let body = r.text().await.unwrap();
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    pub async fn get(&mut self, path_and_query: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .header("cookie", self.cookie_header(path_and_query))
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    /// [`Browser::post`] with extra request headers.
    pub async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header(path))
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        self.finish(r).await
    }

    /// Posts the form on `page` back with `extra` fields (which replace those of the page).
    pub async fn submit(&mut self, page: &Page, extra: &[(&str, &str)]) -> Page {
        let fields = page.fields();
        let mut form: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form.extend_from_slice(extra);
        let action = page
            .body
            .split("action=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a form")
            .to_string();
        self.post(&action, &form).await
    }
}

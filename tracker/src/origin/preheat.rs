//! Preheat: fetch every blob of an image before a deploy asks for it.
//!
//! `POST /origin/v1/preheat?image=REF[&platform=os/arch[/variant]]`, with
//! the registry credentials in `Authorization` when the image is private.
//! The image's manifest is resolved (an index or manifest list picks the
//! platform, `linux/amd64` by default) and each config and layer blob is
//! fetched through the origin exactly as a proxy's first request would, so
//! the deploy that follows is warm. Answers with the blobs and their
//! lengths once every fetch has started.

use bay_core::allow::Upstream;
use bay_core::registry::Auth;
use bay_httpd::{Request, Response};
use bay_wire::oci::{media_type, parse_manifest, ImageReference, Manifest, Reference};

use bay_wire::origin::{PreheatAnswer, PreheatAsk, PreheatedBlob};

use super::api::query;
use super::{json_error, registry_error, Asked, OriginWorker};

struct Platform {
    os: String,
    arch: String,
    variant: Option<String>,
}

fn platform(text: Option<&str>) -> Option<Platform> {
    let text = text.unwrap_or("linux/amd64");
    let mut parts = text.split('/');
    let os = parts.next().filter(|s| !s.is_empty())?.to_string();
    let arch = parts.next().filter(|s| !s.is_empty())?.to_string();
    let variant = parts.next().map(str::to_string);
    parts
        .next()
        .is_none()
        .then_some(Platform { os, arch, variant })
}

impl OriginWorker {
    /// `POST /origin/v1/preheat`.
    pub async fn preheat(&self, req: &Request) -> Response {
        let Ok(ask) = PreheatAsk::parse_query(query(req)) else {
            return json_error(400, "missing or invalid image or platform parameter");
        };
        let Ok(image) = ImageReference::parse(&ask.image) else {
            return json_error(400, "missing or invalid image reference");
        };
        let Some(platform) = platform(ask.platform.as_deref()) else {
            return json_error(400, "platform must be os/arch or os/arch/variant");
        };
        let upstream = match Upstream::parse(image.api_host()) {
            Ok(u) if self.origin.allow.allows(&u) => u,
            _ => {
                return json_error(
                    403,
                    &format!(
                        "registry {} is not allowed (--allow-registry)",
                        image.registry()
                    ),
                )
            }
        };
        let registry = match self.origin.registries.client(upstream.as_str(), &self.http) {
            Ok(r) => r,
            Err(e) => return json_error(400, &e.to_string()),
        };
        let auth = Auth::from_header(req.header("authorization"));
        let accept: Vec<String> = media_type::MANIFEST_TYPES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let repo = image.repository().clone();
        let mut reference = image.manifest_reference();
        let mut manifest = None;
        // An index leads to one manifest; a manifest to nothing further.
        for _ in 0..2 {
            let got = match registry
                .get_manifest(&repo, &reference, &accept, &auth)
                .await
            {
                Ok(m) => m,
                Err(e) => return registry_error(&e),
            };
            let parsed = match parse_manifest(got.media_type.as_deref(), &got.body) {
                Ok(m) => m,
                Err(e) => return json_error(502, &format!("unreadable manifest: {e}")),
            };
            match parsed.as_index() {
                Some(index) => {
                    let Some(child) = index.manifest_for(
                        &platform.os,
                        &platform.arch,
                        platform.variant.as_deref(),
                    ) else {
                        return json_error(404, "no manifest for that platform in the index");
                    };
                    reference = Reference::Digest(child.digest.clone());
                }
                None => {
                    manifest = Some(parsed);
                    break;
                }
            }
        }
        let Some(manifest) = manifest.as_ref().and_then(Manifest::as_image) else {
            return json_error(502, "the index points at another index");
        };
        let mut blobs = Vec::new();
        for descriptor in manifest.blobs() {
            if descriptor.is_nondistributable() || descriptor.size == 0 {
                continue;
            }
            let asked = Asked {
                registry: registry.clone(),
                repo: repo.clone(),
                digest: descriptor.digest.clone(),
                auth: auth.clone(),
            };
            match self.fetch_for(&asked).await {
                Ok(fetch) => blobs.push(PreheatedBlob {
                    digest: descriptor.digest.clone(),
                    length: fetch.length,
                }),
                Err(response) => return response,
            }
        }
        let answer = PreheatAnswer {
            image: image.to_string(),
            blobs,
        };
        Response::new(200)
            .header("content-type", "application/json")
            .body(answer.to_json())
    }
}

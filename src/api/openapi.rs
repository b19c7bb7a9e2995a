//! The OpenAPI 3 document: every route is registered through `routes!`, which reads the
//! handler's own `#[utoipa::path]`, so the document and the router cannot disagree.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{acs, admin, catalog, ipam, sessions, wireguard, ApiState};
use crate::ops::acs::MAX_FILE_BYTES;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dotmac-edge API",
        description = "Sessions, subscribers, plans, NAS (and their WireGuard tunnels), address pools and leases of one ISP \
            tenant; Disconnect and CoA to the NAS; the ACS's CPE devices, tasks, presets and \
            files. Answers are `{data, meta, links}`; \
            refusals `{error: {code, message, details, request_id}}`. Authenticate with \
            `Authorization: Bearer <token or JWT>`; reads need the read scope, everything \
            else write."
    ),
    modifiers(&Bearer),
    tags((name = "sessions"), (name = "subscribers"), (name = "plans"), (name = "nas"),
        (name = "ipam"), (name = "acs"), (name = "admin"))
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::get_session))
        .routes(routes!(sessions::disconnect_session))
        .routes(routes!(sessions::coa_session))
        .routes(routes!(
            catalog::list_subscribers,
            catalog::create_subscriber
        ))
        .routes(routes!(
            catalog::get_subscriber,
            catalog::patch_subscriber,
            catalog::delete_subscriber
        ))
        .routes(routes!(sessions::subscriber_usage))
        .routes(routes!(sessions::disconnect_subscriber))
        .routes(routes!(catalog::list_plans, catalog::create_plan))
        .routes(routes!(catalog::get_plan, catalog::delete_plan))
        .routes(routes!(catalog::list_nas, catalog::create_nas))
        .routes(routes!(catalog::get_nas, catalog::delete_nas))
        .routes(routes!(wireguard::tunnel_status))
        .routes(routes!(wireguard::tunnel_config))
        .routes(routes!(wireguard::interface))
        .routes(routes!(ipam::list_pools, ipam::create_pool))
        .routes(routes!(ipam::get_pool, ipam::delete_pool))
        .routes(routes!(ipam::pool_usage))
        .routes(routes!(ipam::pool_available))
        .routes(routes!(ipam::reserve, ipam::unreserve))
        .routes(routes!(ipam::list_leases))
        .routes(routes!(ipam::release_lease))
        .routes(routes!(acs::list_devices))
        .routes(routes!(
            acs::get_device,
            acs::patch_device,
            acs::delete_device
        ))
        .routes(routes!(acs::device_parameters))
        .routes(routes!(acs::create_task))
        .routes(routes!(acs::connection_request))
        .routes(routes!(acs::list_tasks))
        .routes(routes!(acs::get_task, acs::delete_task))
        .routes(routes!(acs::list_presets))
        .routes(routes!(
            acs::get_preset,
            acs::put_preset,
            acs::delete_preset
        ))
        .routes(routes!(acs::list_files))
        .merge(
            // Uploads take file-sized bodies; the limit set here, nearer the handler, wins
            // over the API's.
            OpenApiRouter::new()
                .routes(routes!(acs::get_file, acs::put_file, acs::delete_file))
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FILE_BYTES)),
        )
        .routes(routes!(admin::list_tokens, admin::create_token))
        .routes(routes!(admin::delete_token))
        .routes(routes!(admin::list_audit))
}

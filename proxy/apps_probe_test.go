package proxy_test

// The apps' real requests through the real door: for every service with a
// preset, what its official clients send (each row names the client file
// the request comes from) and the admin-sensitive paths those clients never
// need, against the shipped routes.hcl. routes/presets.go cites the same
// sources for the rules; docs/apps.md explains them.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/auth"
	"gatehouse/routes"
)

// appProbe is one request and the outcome the shipped table must give it.
type appProbe struct {
	door         routes.Door
	method, host string
	path         string
	want         want // reach (the backend answers), signIn (family: 503 without oidc), hidden (the unknown-host 404)
	route        string
	src          string // the client source the request comes from, or why the path is sensitive
}

// Hosts of the shipped table on the Cloudflare door.
const (
	watch      = "watch.example.com"
	photos     = "photos.example.com"
	files      = "files.example.com"
	audiobooks = "audiobooks.example.com"
	music      = "music.example.com"
	authHost   = "auth.example.com"
	passwords  = "passwords.example.com"
)

// Short names of the cited sources (routes/presets.go has the full paths).
const (
	jfTV    = "jellyfin-androidtv "
	jfPhone = "jellyfin-android "
	jfSwift = "Swiftfin "
	jfKodi  = "jellyfin-kodi "
	jfSrv   = "jellyfin "
	absApp  = "audiobookshelf-app "
	absSrv  = "audiobookshelf "
	ncApp   = "nextcloud/android "
	ncLib   = "nextcloud/android-library "
	ncDesk  = "nextcloud/desktop "
	ncSrv   = "nextcloud/server "
	kcGuide = "keycloak docs/guides/server/reverseproxy.adoc"
)

func cf(method, host, path string, w want, route, src string) appProbe {
	return appProbe{routes.Cloudflare, method, host, path, w, route, src}
}

func tn(method, route, path string, w want, src string) appProbe {
	return appProbe{routes.Tailnet, method, route + ".tail1234.ts.net", path, w, route, src}
}

// shippedAppProbes are the shipped table's answers to the apps.
var shippedAppProbes = []appProbe{
	// --- Jellyfin: the native apps' API is app ------------------------------
	cf("GET", watch, "/System/Info/Public", reach, "jellyfin", "sdk-kotlin discovery/RecommendedServerDiscovery.kt; "+jfTV+"auth/repository/ServerRepository.kt"),
	cf("GET", watch, "/system/info/public", reach, "jellyfin", jfKodi+"jellyfin/api.py get_public_info (lower case)"),
	cf("GET", watch, "/System/Info", reach, "jellyfin", jfKodi+"jellyfin/api.py validate_authentication_token"),
	cf("GET", watch, "/System/Configuration/encoding", reach, "jellyfin", jfKodi+"helper/playutils.py get_transcode_settings"),
	cf("POST", watch, "/Users/AuthenticateByName", reach, "jellyfin", jfTV+"auth/repository/AuthenticationRepository.kt"),
	cf("POST", watch, "/Users/AuthenticateWithQuickConnect", reach, "jellyfin", jfTV+"auth/repository/AuthenticationRepository.kt"),
	cf("GET", watch, "/Users/Me", reach, "jellyfin", jfTV+"auth/repository/AuthenticationRepository.kt"),
	cf("GET", watch, "/Users/Public", reach, "jellyfin", jfTV+"auth/repository/ServerUserRepository.kt"),
	cf("GET", watch, "/Users/u1/Items", reach, "jellyfin", jfKodi+"downloader.py"),
	cf("POST", watch, "/Users/u1/FavoriteItems/i1", reach, "jellyfin", jfKodi+"jellyfin/api.py favorite"),
	cf("GET", watch, "/UserViews", reach, "jellyfin", jfTV+"data/repository/UserViewsRepository.kt"),
	cf("GET", watch, "/UserItems/Resume", reach, "jellyfin", jfTV+"integration/LeanbackChannelWorker.kt"),
	cf("POST", watch, "/UserFavoriteItems/i1", reach, "jellyfin", jfTV+"data/repository/ItemMutationRepository.kt"),
	cf("POST", watch, "/UserPlayedItems/i1", reach, "jellyfin", jfPhone+"player/PlayerViewModel.kt"),
	cf("GET", watch, "/UserImage", reach, "jellyfin", jfTV+"util/apiclient/JellyfinImage.kt; "+jfSwift+"SwiftinStore+UserState.swift (avatars)"),
	cf("HEAD", watch, "/UserImage", reach, "jellyfin", jfSwift+"SwiftinStore+UserState.swift"),
	cf("GET", watch, "/Items", reach, "jellyfin", jfTV+"integration/MediaContentProvider.kt"),
	cf("GET", watch, "/Items/i1/Images/Primary", reach, "jellyfin", jfTV+"util/apiclient/JellyfinImage.kt"),
	cf("POST", watch, "/Items/i1/PlaybackInfo", reach, "jellyfin", jfTV+"ui/playback/PlaybackManager.kt"),
	cf("GET", watch, "/Items/i1/Download", reach, "jellyfin", jfPhone+"downloads/DownloadQueue.kt"),
	cf("GET", watch, "/Videos/i1/stream.mkv", reach, "jellyfin", jfPhone+"player/queue/QueueManager.kt"),
	cf("GET", watch, "/Videos/i1/m1/Subtitles/0/Stream.srt", reach, "jellyfin", jfTV+"ui/playback/ExternalPlayerActivity.kt"),
	cf("GET", watch, "/Videos/i1/Trickplay/320/0.jpg", reach, "jellyfin", jfTV+"ui/playback/overlay/CustomSeekProvider.kt"),
	cf("DELETE", watch, "/Videos/ActiveEncodings", reach, "jellyfin", jfTV+"ui/playback/PlaybackManager.kt"),
	cf("GET", watch, "/Audio/i1/universal", reach, "jellyfin", jfPhone+"sessionbrowser/SessionBrowserCallback.kt"),
	cf("GET", watch, "/Audio/i1/Lyrics", reach, "jellyfin", jfTV+"playback/jellyfin lyrics/LyricsPlayerService.kt"),
	cf("GET", watch, "/Shows/NextUp", reach, "jellyfin", jfTV+"integration/LeanbackChannelWorker.kt"),
	cf("GET", watch, "/Shows/s1/Episodes", reach, "jellyfin", jfKodi+"downloader.py"),
	cf("GET", watch, "/Artists/AlbumArtists", reach, "jellyfin", jfTV+"ui/itemhandling/ItemRowAdapterHelper.kt"),
	cf("GET", watch, "/Persons", reach, "jellyfin", jfSwift+"Objects/Libraries/PeopleLibrary.swift"),
	cf("GET", watch, "/Genres", reach, "jellyfin", jfTV+"ui/browsing/ByGenreFragment.kt"),
	cf("GET", watch, "/Playlists/p1/Items", reach, "jellyfin", jfTV+"ui/itemdetail/ItemListFragmentHelper.kt"),
	cf("GET", watch, "/LiveTv/Channels", reach, "jellyfin", jfKodi+"jellyfin/api.py get_channels"),
	cf("POST", watch, "/LiveTv/Timers", reach, "jellyfin", jfTV+"ui/LiveProgramDetailPopupHelper.kt"),
	cf("POST", watch, "/LiveStreams/Open", reach, "jellyfin", jfKodi+"jellyfin/api.py get_live_stream"),
	cf("POST", watch, "/LiveStreams/Close", reach, "jellyfin", jfKodi+"jellyfin/api.py close_live_stream"),
	cf("POST", watch, "/Sessions/Capabilities/Full", reach, "jellyfin", jfKodi+"jellyfin/api.py post_capabilities"),
	cf("POST", watch, "/Sessions/Playing/Progress", reach, "jellyfin", jfTV+"util/apiclient/ReportingHelper.kt"),
	cf("GET", watch, "/Playback/BitrateTest", reach, "jellyfin", jfSwift+"MediaPlayerManager/MediaPlayerManager.swift"),
	cf("GET", watch, "/MediaSegments/i1", reach, "jellyfin", jfTV+"ui/playback/segment/MediaSegmentRepository.kt"),
	cf("GET", watch, "/DisplayPreferences/usersettings", reach, "jellyfin", jfTV+"preference/store/DisplayPreferencesStore.kt"),
	cf("GET", watch, "/Localization/Cultures", reach, "jellyfin", jfSwift+"Objects/Libraries/CultureLibrary.swift"),
	cf("GET", watch, "/Branding/Configuration", reach, "jellyfin", jfTV+"auth/repository/ServerRepository.kt"),
	cf("GET", watch, "/Branding/Splashscreen", reach, "jellyfin", jfTV+"data/service/BackgroundService.kt"),
	cf("POST", watch, "/QuickConnect/Initiate", reach, "jellyfin", jfTV+"ui/startup/UserLoginViewModel.kt"),
	cf("POST", watch, "/QuickConnect/Authorize", reach, "jellyfin", jfSwift+"ViewModels/QuickConnectAuthorizeViewModel.swift"),
	cf("POST", watch, "/ClientLog/Document", reach, "jellyfin", jfTV+"ui/settings/screen/playback/SettingsPlaybackAdvancedScreen.kt"),
	cf("GET", watch, "/socket", reach, "jellyfin", "sdk-kotlin api/sockets/DefaultSocketApi.kt; "+jfKodi+"jellyfin/ws_client.py"),
	cf("GET", watch, "/Jellyfin.Plugin.KodiSyncQueue/u1/GetItems", reach, "jellyfin", jfKodi+"jellyfin/api.py get_sync_queue"),
	cf("GET", watch, "/Jellyfin.Plugin.KodiSyncQueue/GetServerDateTime", reach, "jellyfin", jfKodi+"jellyfin/api.py get_server_time"),

	// --- Jellyfin: what no app needs and loopback would unlock is closed --
	cf("POST", watch, "/System/Restart", hidden, "", jfSrv+"SystemController.cs: LocalAccessOrRequiresElevation, no login from loopback"),
	cf("POST", watch, "/system/restart/", hidden, "", jfSrv+"SystemController.cs (ASP.NET ignores case)"),
	cf("POST", watch, "/System/Shutdown", hidden, "", jfSrv+"SystemController.cs"),
	cf("GET", watch, "/System/Logs", hidden, "", jfSrv+"SystemController.cs"),
	cf("GET", watch, "/System/Logs/Log", hidden, "", jfSrv+"SystemController.cs"),
	cf("GET", watch, "/System/Info/Storage", hidden, "", jfSrv+"SystemController.cs"),
	cf("GET", watch, "/System/Configuration", hidden, "", jfSrv+"ConfigurationController.cs"),
	cf("POST", watch, "/System/Configuration/Branding", hidden, "", jfSrv+"ConfigurationController.cs"),
	cf("GET", watch, "/System/ActivityLog/Entries", hidden, "", jfSrv+"ActivityLogController.cs"),
	cf("POST", watch, "/Startup/User", hidden, "", jfSrv+"StartupController.cs: FirstTimeSetupOrElevated"),
	cf("GET", watch, "/Environment/Drives", hidden, "", jfSrv+"EnvironmentController.cs"),
	cf("POST", watch, "/Library/Refresh", hidden, "", jfSrv+"LibraryController.cs"),
	cf("POST", watch, "/Library/VirtualFolders", hidden, "", jfSrv+"LibraryStructureController.cs"),
	cf("POST", watch, "/Users/New", hidden, "", jfSrv+"UserController.cs"),
	cf("POST", watch, "/Users/ForgotPassword", hidden, "", jfSrv+"UserController.cs: PIN reset for 'local' callers"),
	cf("POST", watch, "/Users/ForgotPassword/Pin", hidden, "", jfSrv+"DefaultPasswordResetProvider.cs"),
	cf("POST", watch, "/Auth/Keys", hidden, "", jfSrv+"ApiKeyController.cs"),
	cf("GET", watch, "/Plugins", hidden, "", jfSrv+"PluginsController.cs"),
	cf("POST", watch, "/Packages/Installed/x", hidden, "", jfSrv+"PackageController.cs"),
	cf("GET", watch, "/Repositories", hidden, "", jfSrv+"PackageController.cs"),
	cf("POST", watch, "/ScheduledTasks/Running/t1", hidden, "", jfSrv+"ScheduledTasksController.cs"),
	cf("GET", watch, "/Devices", hidden, "", jfSrv+"DevicesController.cs"),
	cf("POST", watch, "/Backup/Create", hidden, "", jfSrv+"BackupController.cs"),

	// --- Jellyfin: the web client and what only it calls: sign-in ---------
	cf("GET", watch, "/", signIn, "jellyfin", jfPhone+"webapp/WebViewFragment.kt loadUrl(<server>/): the Android app cannot pass (docs/apps.md)"),
	cf("GET", watch, "/web/index.html", signIn, "jellyfin", "jellyfin-web, behind family sign-in"),
	cf("GET", watch, "/System/Ping", signIn, "jellyfin", "no native client calls it"),
	cf("GET", watch, "/Albums/i1/InstantMix", signIn, "jellyfin", "no official native client calls it (androidtv, android, Swiftfin, kodi)"),
	cf("GET", watch, "/Songs/i1/InstantMix", signIn, "jellyfin", "no official native client calls it"),
	cf("GET", watch, "/Channels", signIn, "jellyfin", "jellyfin-web's dashboard only"),
	cf("GET", watch, "/GetUtcTime", signIn, "jellyfin", "jellyfin-web's SyncPlay only"),

	// The tailnet door is the presets' business never.
	tn("POST", "jellyfin", "/System/Restart", reach, "presets change only the cloudflare door"),
	tn("GET", "jellyfin", "/web/index.html", reach, "members on the tailnet"),

	// --- Immich ------------------------------------------------------------
	cf("GET", photos, "/api/server/ping", reach, "immich", "immich mobile/lib/services/api.service.dart"),
	cf("GET", photos, "/.well-known/immich", reach, "immich", "immich mobile/lib/services/api.service.dart"),
	cf("POST", photos, "/api/auth/login", reach, "immich", "immich mobile (AuthenticationApi.login)"),
	cf("GET", photos, "/api/users/me", reach, "immich", "immich mobile"),
	cf("POST", photos, "/api/auth/admin-sign-up", hidden, "", "immich server/src/controllers/auth.controller.ts: public first-admin sign-up"),
	cf("POST", photos, "/API/Auth/Admin-Sign-Up", hidden, "", "immich server auth.controller.ts (any case)"),
	cf("GET", photos, "/share/k1", reach, "immich", "immich web/src/routes/(user)/share/[key]/+page.svelte"),
	cf("GET", photos, "/s/holiday", reach, "immich", "immich web/src/routes/(user)/s/[slug]"),
	cf("GET", photos, "/_app/immutable/entry/start.js", reach, "immich", "immich web/svelte.config.js (SvelteKit appDir)"),
	cf("GET", photos, "/custom.css", reach, "immich", "immich web/src/app.html"),
	cf("GET", photos, "/", signIn, "immich", "the web client"),
	cf("GET", photos, "/photos/a1", signIn, "immich", "the web client"),
	cf("GET", photos, "/admin/users", signIn, "immich", "the web client's admin pages"),
	tn("POST", "immich", "/api/auth/admin-sign-up", reach, "set the server up on the tailnet"),

	// --- Nextcloud -----------------------------------------------------------
	cf("GET", files, "/status.php", reach, "nextcloud", ncLib+"lib/common/accounts/AccountUtils.java STATUS_PATH"),
	cf("PROPFIND", files, "/remote.php/dav/files/me/", reach, "nextcloud", ncLib+"AccountUtils.java WEBDAV_PATH_9_0"),
	cf("PUT", files, "/remote.php/dav/uploads/me/u1/1", reach, "nextcloud", ncLib+"AccountUtils.java DAV_UPLOAD"),
	cf("GET", files, "/ocs/v2.php/cloud/capabilities", reach, "nextcloud", ncLib+"resources/status/GetCapabilitiesRemoteOperation.java"),
	cf("POST", files, "/index.php/login/v2", reach, "nextcloud", ncApp+"authentication/AuthenticatorActivity.java WEB_LOGIN; "+ncDesk+"src/gui/creds/flow2auth.cpp"),
	cf("POST", files, "/index.php/login/v2/poll", reach, "nextcloud", ncDesk+"src/gui/creds/flow2auth.cpp"),
	cf("POST", files, "/login/v2/poll", reach, "nextcloud", ncDesk+"flow2auth.cpp polls what the server names (pretty URLs)"),
	cf("GET", files, "/index.php/login/v2/flow/t1", signIn, "nextcloud", ncSrv+"core/routes.php ClientFlowLoginV2#landing: the browser signs in first"),
	cf("GET", files, "/login/v2/flow/t1", signIn, "nextcloud", ncSrv+"core/routes.php (pretty URLs)"),
	cf("GET", files, "/index.php/login/v2/grant", signIn, "nextcloud", ncSrv+"core/routes.php ClientFlowLoginV2#grantPage"),
	cf("GET", files, "/index.php/204", reach, "nextcloud", ncApp+"client/network/ConnectivityServiceImpl.kt: walled-garden check"),
	cf("GET", files, "/index.php/avatar/me/64", reach, "nextcloud", ncApp+"datamodel/ThumbnailsCacheManager.java"),
	cf("GET", files, "/index.php/core/preview", reach, "nextcloud", ncApp+"datamodel/ThumbnailsCacheManager.java"),
	cf("GET", files, "/index.php/apps/files/api/v1/thumbnail/64/64/a.jpg", reach, "nextcloud", ncApp+"datamodel/ThumbnailsCacheManager.java"),
	cf("GET", files, "/index.php/apps/files_trashbin/preview", reach, "nextcloud", ncApp+"datamodel/ThumbnailsCacheManager.java"),
	cf("POST", files, "/index.php/core/wipe/check", reach, "nextcloud", ncLib+"resources/users/CheckRemoteWipeRemoteOperation.java; "+ncDesk+"src/gui/remotewipe.cpp"),
	cf("POST", files, "/index.php/core/wipe/success", reach, "nextcloud", ncLib+"resources/users/RemoteWipeSuccessRemoteOperation.java"),
	cf("GET", files, "/index.php/apps/groupfolders/folders", reach, "nextcloud", ncLib+"groupfolders/GetGroupfoldersRemoteOperation.kt"),
	cf("GET", files, "/index.php/login", signIn, "nextcloud", "the web login stays behind sign-in"),
	cf("GET", files, "/index.php/apps/files/", signIn, "nextcloud", "the web client"),
	cf("GET", files, "/index.php/settings/admin", signIn, "nextcloud", "the web client's admin settings"),
	cf("PROPFIND", files, "/public.php/webdav/", signIn, "nextcloud", "no official client uses it: public shares stay behind sign-in"),
	cf("PROPFIND", files, "/.well-known/caldav", signIn, "nextcloud", ncApp+"ui/activity/SettingsActivity.java hands DAVx5 /remote.php/dav"),

	// --- Audiobookshelf --------------------------------------------------------
	cf("GET", audiobooks, "/status", reach, "audiobookshelf", absApp+"components/connection/ServerConnectForm.vue"),
	cf("GET", audiobooks, "/ping", reach, "audiobookshelf", absApp+"android/.../server/ApiHandler.kt pingServer"),
	cf("POST", audiobooks, "/login", reach, "audiobookshelf", absApp+"ServerConnectForm.vue requestServerLogin"),
	cf("POST", audiobooks, "/auth/refresh", reach, "audiobookshelf", absApp+"android/.../server/ApiHandler.kt handleTokenRefresh"),
	cf("POST", audiobooks, "/audiobookshelf/auth/refresh", reach, "audiobookshelf", absApp+"ios/App/Shared/util/ApiClient.swift, address with the base path"),
	cf("GET", audiobooks, "/auth/openid", reach, "audiobookshelf", absApp+"ServerConnectForm.vue (OpenID in the app)"),
	cf("GET", audiobooks, "/auth/openid/mobile-redirect", reach, "audiobookshelf", absSrv+"server/Auth.js"),
	cf("POST", audiobooks, "/api/authorize", reach, "audiobookshelf", absApp+"layouts/default.vue"),
	cf("GET", audiobooks, "/api/libraries", reach, "audiobookshelf", absApp+"the API"),
	cf("GET", audiobooks, "/audiobookshelf/api/libraries", reach, "audiobookshelf", absSrv+"server/Server.js ROUTER_BASE_PATH"),
	cf("GET", audiobooks, "/socket.io/", reach, "audiobookshelf", absApp+"plugins/server.js"),
	cf("GET", audiobooks, "/audiobookshelf/socket.io/", reach, "audiobookshelf", absSrv+"server/SocketAuthority.js base-path socket"),
	cf("GET", audiobooks, "/hls/s1/output.m3u8", reach, "audiobookshelf", absApp+"plugins/capacitor/AbsAudioPlayer.js"),
	cf("GET", audiobooks, "/public/session/s1/track/1", reach, "audiobookshelf", absApp+"plugins/capacitor/AbsAudioPlayer.js (cast)"),
	cf("POST", audiobooks, "/logout", reach, "audiobookshelf", absApp+"store/user.js"),
	cf("POST", audiobooks, "/init", hidden, "", absSrv+"server/Server.js POST /init: the root user"),
	cf("POST", audiobooks, "/audiobookshelf/init", hidden, "", absSrv+"server/Server.js"),
	cf("GET", audiobooks, "/audiobookshelf/", signIn, "audiobookshelf", "the web client"),
	cf("GET", audiobooks, "/audiobookshelf/share/sl1", signIn, "audiobookshelf", "shared links are opt-in (audiobookshelf-share)"),
	cf("GET", audiobooks, "/public/share/sl1", signIn, "audiobookshelf", "the share API is opt-in"),
	cf("GET", audiobooks, "/feed/f1", signIn, "audiobookshelf", "podcast feeds are opt-in (audiobookshelf-feed)"),

	// --- Navidrome ------------------------------------------------------------
	cf("GET", music, "/rest/ping.view", reach, "navidrome", "navidrome cmd/root.go: the Subsonic API"),
	cf("GET", music, "/rest/stream.view", reach, "navidrome", "navidrome cmd/root.go"),
	cf("GET", music, "/app/", signIn, "navidrome", "the web client"),
	cf("POST", music, "/auth/login", signIn, "navidrome", "the web login: the family member is signed in by Remote-User"),
	cf("GET", music, "/share/sh1", signIn, "navidrome", "Navidrome's shares are not opened"),

	// --- Keycloak ----------------------------------------------------------------
	cf("GET", authHost, "/realms/home/protocol/openid-connect/auth", reach, "keycloak", kcGuide+": /realms/ (the household realm)"),
	cf("POST", authHost, "/realms/home/protocol/openid-connect/token", reach, "keycloak", kcGuide),
	cf("GET", authHost, "/realms/home/.well-known/openid-configuration", reach, "keycloak", kcGuide),
	cf("GET", authHost, "/realms/home/account/", reach, "keycloak", "the household's own account console"),
	cf("GET", authHost, "/resources/v1/login/keycloak.v2/css/styles.css", reach, "keycloak", kcGuide+": /resources/"),
	cf("GET", authHost, "/realms/master/protocol/openid-connect/auth", hidden, "", "the master realm: Keycloak's admins sign in there"),
	cf("GET", authHost, "/realms/master/.well-known/openid-configuration", hidden, "", "the master realm"),
	cf("GET", authHost, "/realms/home/../master/account/", hidden, "", "the master realm, by a dot segment"),
	cf("GET", authHost, "/admin/master/console/", hidden, "", kcGuide+": /admin/ is not exposed"),
	cf("GET", authHost, "/admin/realms/home/users", hidden, "", kcGuide+": the admin REST API"),
	cf("GET", authHost, "/metrics", hidden, "", kcGuide),
	cf("GET", authHost, "/health", hidden, "", kcGuide),
	cf("GET", authHost, "/realms/home/..;/master/account/", ambiguous, "", "the master realm, by a servlet dot segment"),

	// --- Vaultwarden: the Bitwarden clients, never the admin panel ---------
	cf("POST", passwords, "/identity/connect/token", reach, "vaultwarden", "Bitwarden clients' login (routes.hcl: path rule with a ban)"),
	cf("GET", passwords, "/api/sync", reach, "vaultwarden", "Bitwarden clients' vault sync"),
	cf("GET", passwords, "/admin", hidden, "", "routes.hcl: /admin closed on the Cloudflare door"),
	cf("GET", passwords, "/admin/users/overview", hidden, "", "the admin panel"),
	cf("GET", passwords, "/;/admin", ambiguous, "", "an empty segment to servlet-style routers: /admin"),
	cf("GET", passwords, "/;x/admin", ambiguous, "", "the same with a parameter"),
	cf("POST", passwords, "/api/..;/admin/invite", ambiguous, "", "a servlet dot segment into /admin"),

	// --- Nextcloud: a name the backend would read as another resource --------
	cf("DELETE", files, "/remote.php/dav/files/alice/Docs/Sub/..;tmp", ambiguous, "", "a legal Nextcloud name that a rewrite turned into the parent folder"),
	cf("MOVE", files, "/remote.php/dav/files/alice/.;x", ambiguous, "", "a dot segment with parameters"),
}

// variantAppProbes are the answers of the shipped table after the recipes
// docs/apps.md gives: Jellyfin's web client left to its own login (for the
// Android phone app), and Audiobookshelf's opt-in presets.
var variantAppProbes = []appProbe{
	cf("GET", watch, "/", reach, "jellyfin", jfPhone+"webapp/WebViewFragment.kt loadUrl(<server>/)"),
	cf("GET", watch, "/web/index.html", reach, "jellyfin", jfPhone+"webapp/WebViewFragment.kt"),
	cf("GET", watch, "/web/main.a1.bundle.js", reach, "jellyfin", jfPhone+"webapp/JellyfinWebViewClient.kt MAIN_BUNDLE_PATH_REGEX"),
	cf("POST", watch, "/Sessions/Capabilities/Full", reach, "jellyfin", jfPhone+"webapp/JellyfinWebViewClient.kt SESSION_CAPABILITIES_PATH"),
	cf("GET", watch, "/System/Ping", reach, "jellyfin", "unlisted paths take the route's access"),
	cf("POST", watch, "/System/Restart", hidden, "", jfSrv+"SystemController.cs: still closed"),
	cf("POST", watch, "/Startup/User", hidden, "", jfSrv+"StartupController.cs: still closed"),
	cf("GET", watch, "/Plugins", hidden, "", jfSrv+"PluginsController.cs: still closed"),

	cf("GET", audiobooks, "/audiobookshelf/share/sl1", reach, "audiobookshelf", absSrv+"client/components/modals/ShareModal.vue"),
	cf("GET", audiobooks, "/audiobookshelf/_nuxt/app.js", reach, "audiobookshelf", absSrv+"client/nuxt.config.js"),
	cf("GET", audiobooks, "/audiobookshelf/public/share/sl1", reach, "audiobookshelf", absSrv+"client/pages/share/_slug.vue"),
	cf("GET", audiobooks, "/audiobookshelf/public/share/sl1/track/1", reach, "audiobookshelf", absSrv+"server/routers/PublicRouter.js"),
	cf("GET", audiobooks, "/feed/f1", reach, "audiobookshelf", absSrv+"server/Server.js /feed/:slug"),
	cf("GET", audiobooks, "/audiobookshelf/feed/f1/item/e1/a.mp3", reach, "audiobookshelf", absSrv+"server/Server.js"),
	cf("GET", audiobooks, "/audiobookshelf/", signIn, "audiobookshelf", "the web client stays behind sign-in"),
	cf("GET", audiobooks, "/public/session/s1/track/1", reach, "audiobookshelf", absApp+"plugins/capacitor/AbsAudioPlayer.js"),
	cf("POST", audiobooks, "/init", hidden, "", absSrv+"server/Server.js: still closed"),
}

// The recipes of docs/apps.md as edits of the shipped file.
func appVariants(t *testing.T) func(string) string {
	return func(src string) string {
		for _, e := range [][2]string{
			// Jellyfin: the Android phone app's WebView needs the web client.
			{"host   = \"watch\"\n    access = \"family\"", "host   = \"watch\"\n    access = \"app\""},
			{"preset = \"audiobookshelf\"", "preset = [\"audiobookshelf\", \"audiobookshelf-share\", \"audiobookshelf-feed\"]"},
		} {
			if strings.Count(src, e[0]) != 1 {
				t.Fatalf("the shipped routes.hcl no longer has %q once; update the recipe", e[0])
			}
			src = strings.Replace(src, e[0], e[1], 1)
		}
		return src
	}
}

func TestAppProbesShipped(t *testing.T) {
	runAppProbes(t, startShipped(t), shippedAppProbes)
}

func TestAppProbesVariants(t *testing.T) {
	runAppProbes(t, startShippedEdited(t, appVariants(t)), variantAppProbes)
}

// The tables are large enough to stand for the apps, and every preset'd
// host is in them.
func TestAppProbesCoverPresets(t *testing.T) {
	if n := len(shippedAppProbes) + len(variantAppProbes); n < 100 {
		t.Errorf("%d probes; the apps' requests need at least 100", n)
	}
	s := startShipped(t)
	covered := map[string]bool{}
	for _, p := range shippedAppProbes {
		covered[p.host] = true
	}
	for _, r := range s.cfg.Routes {
		if dr := r.Doors[routes.Cloudflare]; dr != nil && len(r.Presets) > 0 && !covered[dr.Host] {
			t.Errorf("route %s has presets but no probes on %s", r.Name, dr.Host)
		}
	}
}

func runAppProbes(t *testing.T, s *shipped, probes []appProbe) {
	t.Helper()
	notFoundRef(t, s.door)         // the reference is gatehouse's own 404 page
	tailnet := map[string]string{} // route → base URL of its tailnet node
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range probes {
		name := p.door.String() + " " + p.method + " " + p.host + p.path
		if p.door == routes.Tailnet && tailnet[p.route] == "" {
			srv := httptest.NewUnstartedServer(s.gw.TailnetHandler(p.route, true))
			// staticPeer: a tailnet member who is not an admin.
			srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
				return auth.WithPeerLookup(ctx, staticPeer{})
			}
			srv.Start()
			t.Cleanup(srv.Close)
			tailnet[p.route] = srv.URL
		}
		before := s.totalHits()
		var resp *http.Response
		var body []byte
		if p.want == hidden && p.door == routes.Cloudflare {
			// Byte for byte the unknown host's answer to the same method.
			raw := func(host string) []byte {
				return withoutDate(s.raw(t, p.method+" "+p.path+" HTTP/1.1\r\nHost: "+host+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			}
			if got, want := raw(p.host), raw(unknownHost); !bytes.Equal(got, want) {
				t.Errorf("probe %s (%s): answer differs from the unknown-host 404\n got: %q\nwant: %q", name, p.src, got, want)
			}
		} else {
			base := "http://" + s.addr
			c := s.client
			if p.door == routes.Tailnet {
				base, c = tailnet[p.route], client
			}
			req, err := http.NewRequest(p.method, base+p.path, http.NoBody)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = p.host
			if p.want == signIn {
				// As a browser asks: the HTML page names the route (API
				// clients get JSON, which TestShippedMatrixCloudflare checks).
				req.Header.Set("Accept", "text/html")
			}
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			resp, err = c.Do(req.WithContext(ctx))
			if err != nil {
				cancel()
				t.Fatalf("probe %s: %v", name, err)
			}
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if err != nil {
				t.Fatalf("probe %s: reading the answer: %v", name, err)
			}
		}
		switch p.want {
		case reach:
			if resp.StatusCode != http.StatusOK {
				t.Errorf("probe %s (%s): status %d, want the %s backend: %.200q", name, p.src, resp.StatusCode, p.route, body)
				continue
			}
			if p.method == "HEAD" {
				if got := resp.Header.Get("X-Backend"); got != p.route {
					t.Errorf("probe %s (%s): answered by %q, want %q", name, p.src, got, p.route)
				}
				continue
			}
			got := decodeSeen(t, body)
			if got.Route != p.route || got.Method != p.method || got.Path != routes.CleanPath(p.path) {
				t.Errorf("probe %s (%s): backend %q saw %s %s", name, p.src, got.Route, got.Method, got.Path)
			}
		case signIn:
			if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("Sign-in unavailable")) ||
				!bytes.Contains(body, []byte("<b>"+p.route+"</b>")) {
				t.Errorf("probe %s (%s): status %d, want 503 sign-in unavailable naming %s (no oidc block): %.200q", name, p.src, resp.StatusCode, p.route, body)
			}
		case ambiguous:
			if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("Ambiguous path")) {
				t.Errorf("probe %s (%s): status %d, want 400 ambiguous path: %.200q", name, p.src, resp.StatusCode, body)
			}
		case hidden:
			if p.door == routes.Tailnet && resp.StatusCode != http.StatusNotFound {
				t.Errorf("probe %s (%s): status %d, want 404", name, p.src, resp.StatusCode)
			}
		}
		if p.want != reach && s.totalHits() != before {
			t.Errorf("probe %s (%s): a backend was reached", name, p.src)
		}
	}
}

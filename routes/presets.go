package routes

import (
	"slices"
	"strings"
)

// A preset refines a route on the Cloudflare door with the path rules a
// service's official apps need: `app` paths for the phone, TV and desktop
// apps that cannot follow a sign-in redirect and carry the service's own
// credentials; `closed` paths that no app needs and that would hand the
// internet something only the admin should reach (the door then answers
// like an unknown host); and, rarely, `family` paths below an `app` prefix
// that a browser opens and that must stay behind sign-in.
//
// `preset = "immich"` (or a list, for the opt-in presets) expands to
// these rules when the file is read; `gatehouse routes` shows them. Longest
// prefix wins, as for rules written in the file, and a rule the file writes
// for the same prefix replaces the preset's. The tailnet door is never
// changed.
//
// "The spec of an app is its source": every path cites the client (or, for
// a closed path, the server code) that makes it necessary, as
// "owner/repository path/in/repository: why". docs/apps.md explains them.
type Preset struct {
	Name string
	// OptIn: not part of a service's default, added beside it by choice
	// (shared links, podcast feeds) — see docs/apps.md.
	OptIn bool
	Paths []PresetPath
}

// PresetPath is one rule of a preset.
type PresetPath struct {
	Prefix string // written like a path label: "/api/", "/status.php"
	Access Access // on the cloudflare door: App, Closed or Family
	Why    []string
}

func appPath(prefix string, why ...string) PresetPath {
	return PresetPath{Prefix: prefix, Access: App, Why: why}
}

func closedPath(prefix string, why ...string) PresetPath {
	return PresetPath{Prefix: prefix, Access: Closed, Why: why}
}

func familyPath(prefix string, why ...string) PresetPath {
	return PresetPath{Prefix: prefix, Access: Family, Why: why}
}

// alsoUnder repeats paths below base: Audiobookshelf answers every path both
// at the root and below its web client's base path (advplyr/audiobookshelf
// server/Server.js: requests outside ROUTER_BASE_PATH are rewritten into
// it), and its apps use whichever address the user typed.
func alsoUnder(base string, paths ...PresetPath) []PresetPath {
	out := slices.Clone(paths)
	for _, p := range paths {
		q := p
		q.Prefix = base + p.Prefix
		q.Why = append(slices.Clone(p.Why), "advplyr/audiobookshelf server/Server.js: the same path below ROUTER_BASE_PATH "+base)
		out = append(out, q)
	}
	return out
}

// Where the cited sources live. Paths are from the default branches of the
// official repositories; SDK paths from the jellyfin-sdk-kotlin release the
// Android apps build with (1.8.12).
const (
	jfServer = "jellyfin/jellyfin "
	jfTV     = "jellyfin/jellyfin-androidtv app/src/main/java/org/jellyfin/androidtv/"
	jfPhone  = "jellyfin/jellyfin-android app/src/main/java/org/jellyfin/mobile/"
	jfSwift  = "jellyfin/Swiftfin "
	jfKodi   = "jellyfin/jellyfin-kodi "
	jfSDK    = "jellyfin/jellyfin-sdk-kotlin "

	jfAdminOnly = " (RequiresElevation: the admin dashboard, and Swiftfin's admin screens under Shared/ViewModels/AdminDashboard/, which stay on the tailnet)"

	absApp    = "advplyr/audiobookshelf-app "
	absServer = "advplyr/audiobookshelf "

	ncServer  = "nextcloud/server "
	ncAndroid = "nextcloud/android app/src/main/java/"
	ncLibrary = "nextcloud/android-library library/src/main/java/"
	ncDesktop = "nextcloud/desktop "
	ncKit     = "nextcloud/NextcloudKit Sources/NextcloudKit/"
)

// Presets are the shipped presets by name.
var Presets = map[string]Preset{
	"immich": {Name: "immich", Paths: []PresetPath{
		appPath("/api/",
			"immich-app/immich mobile/lib/services/api.service.dart: the mobile app's whole API (it signs in there with its own token), starting with /api/server/ping"),
		appPath("/.well-known/immich",
			"immich-app/immich mobile/lib/services/api.service.dart: _getWellKnownEndpoint asks where the API lives"),
		appPath("/share/",
			"immich-app/immich web/src/routes/(user)/share/[key]/+page.svelte: a shared link's page, for people without an account"),
		appPath("/s/",
			"immich-app/immich web/src/routes/(user)/s/[slug]/[[photos=photos]]/[[assetId=id]]/+page.svelte: a shared link with a custom slug"),
		appPath("/_app/",
			"immich-app/immich web/svelte.config.js: the web bundle (SvelteKit's default appDir) that a shared link's page loads; its data comes from /api/ with the link's key"),
		appPath("/custom.css",
			"immich-app/immich web/src/app.html: the admin's theme, linked from every page including shared links"),
		closedPath("/api/auth/admin-sign-up",
			"immich-app/immich server/src/controllers/auth.controller.ts: a public route that makes the first admin while there is none; set the server up on the tailnet"),
	}},

	"nextcloud": {Name: "nextcloud", Paths: []PresetPath{
		appPath("/status.php",
			ncLibrary+"com/owncloud/android/lib/common/accounts/AccountUtils.java: STATUS_PATH, the server check",
			ncKit+"NextcloudKit+API.swift: the iOS app's server check"),
		appPath("/remote.php/",
			ncLibrary+"com/owncloud/android/lib/common/accounts/AccountUtils.java: WebDAV files and chunked uploads",
			ncAndroid+"com/owncloud/android/ui/activity/SettingsActivity.java: the calendar and contacts setup hands DAVx5 /remote.php/dav"),
		appPath("/ocs/",
			ncLibrary+"com/owncloud/android/lib/resources/status/GetCapabilitiesRemoteOperation.java: capabilities, shares, notifications, user info",
			ncKit+"NextcloudKit+API.swift: the same for the iOS app"),
		appPath("/index.php/login/v2",
			ncAndroid+"com/owncloud/android/authentication/AuthenticatorActivity.java: WEB_LOGIN, login flow v2 is started here and polled",
			ncDesktop+"src/gui/creds/flow2auth.cpp: the desktop client's login",
			ncKit+"NextcloudKit+Login.swift: the iOS app's login"),
		appPath("/login/v2",
			ncDesktop+"src/gui/creds/flow2auth.cpp: polls the endpoint the server names, which has no index.php when pretty URLs are on",
			ncServer+"core/routes.php: ClientFlowLoginV2#poll"),
		familyPath("/index.php/login/v2/flow",
			ncServer+"core/routes.php: ClientFlowLoginV2#landing, the page the client opens in a browser, which can follow the sign-in redirect before Nextcloud's own login"),
		familyPath("/login/v2/flow",
			ncServer+"core/routes.php: the same page without index.php"),
		familyPath("/index.php/login/v2/grant",
			ncServer+"core/routes.php: ClientFlowLoginV2#grantPage, the browser's last step"),
		familyPath("/login/v2/grant",
			ncServer+"core/routes.php: the same without index.php"),
		appPath("/index.php/204",
			ncAndroid+"com/nextcloud/client/network/ConnectivityServiceImpl.kt: anything but an empty 204 makes the app believe the network is walled and stop syncing",
			ncServer+"core/routes.php: WalledGarden#get"),
		appPath("/index.php/avatar/",
			ncAndroid+"com/owncloud/android/datamodel/ThumbnailsCacheManager.java: avatars",
			ncKit+"NextcloudKit+API.swift: avatars in the iOS app"),
		appPath("/index.php/core/preview",
			ncAndroid+"com/owncloud/android/datamodel/ThumbnailsCacheManager.java: thumbnails by file id",
			ncKit+"NextcloudKit+API.swift: thumbnails in the iOS app"),
		appPath("/index.php/apps/files/api/v1/thumbnail/",
			ncAndroid+"com/owncloud/android/datamodel/ThumbnailsCacheManager.java: thumbnails by path"),
		appPath("/index.php/apps/files_trashbin/preview",
			ncAndroid+"com/owncloud/android/datamodel/ThumbnailsCacheManager.java: thumbnails in the trash bin",
			ncKit+"NextcloudKit+API.swift: the same in the iOS app"),
		appPath("/index.php/core/wipe/",
			ncLibrary+"com/owncloud/android/lib/resources/users/CheckRemoteWipeRemoteOperation.java: remote wipe check (and RemoteWipeSuccessRemoteOperation.java)",
			ncDesktop+"src/gui/remotewipe.cpp: the desktop client's remote wipe",
			ncKit+"NextcloudKit+API.swift: the iOS app's remote wipe"),
		appPath("/index.php/apps/groupfolders/folders",
			ncLibrary+"com/nextcloud/android/lib/resources/groupfolders/GetGroupfoldersRemoteOperation.kt: team folders",
			ncKit+"NextcloudKit+Groupfolders.swift: team folders in the iOS app"),
	}},

	"navidrome": {Name: "navidrome", Paths: []PresetPath{
		appPath("/rest/",
			"navidrome/navidrome cmd/root.go: the Subsonic API (consts/consts.go URLPathSubsonicAPI) that every music app speaks, with credentials on each request; Navidrome has no official app of its own"),
	}},

	"audiobookshelf": {Name: "audiobookshelf", Paths: alsoUnder("/audiobookshelf",
		appPath("/status",
			absApp+"components/connection/ServerConnectForm.vue: getServerAddressStatus, the server's state before sign-in"),
		appPath("/ping",
			absApp+"components/connection/ServerConnectForm.vue: pingServerAddress",
			absApp+"android/app/src/main/java/com/audiobookshelf/app/server/ApiHandler.kt: pingServer",
			absApp+"ios/App/Shared/util/ApiClient.swift: the iOS app's ping"),
		appPath("/login",
			absApp+"components/connection/ServerConnectForm.vue: requestServerLogin"),
		appPath("/logout",
			absApp+"store/user.js: logout"),
		appPath("/auth/refresh",
			absApp+"android/app/src/main/java/com/audiobookshelf/app/server/ApiHandler.kt: handleTokenRefresh renews the short-lived access token; without it the app signs out when the token expires",
			absApp+"ios/App/Shared/util/ApiClient.swift: the same in the iOS app",
			absServer+"server/Auth.js: POST /auth/refresh"),
		appPath("/auth/openid",
			absApp+"components/connection/ServerConnectForm.vue: OpenID sign-in in the app (/auth/openid, /auth/openid/callback)",
			absServer+"server/Auth.js: /auth/openid/mobile-redirect hands the code back to the app"),
		appPath("/api/",
			absApp+"layouts/default.vue: /api/authorize, then the whole API"),
		appPath("/socket.io/",
			absApp+"plugins/server.js: live progress and library updates"),
		appPath("/hls/",
			absApp+"plugins/capacitor/AbsAudioPlayer.js: transcoded streams"),
		appPath("/public/session/",
			absApp+"plugins/capacitor/AbsAudioPlayer.js: the track URL a Chromecast fetches without the app's token"),
		closedPath("/init",
			absServer+"server/Server.js: POST /init makes the root user while there is none; set the server up on the tailnet"),
	)},

	// Shared links: the page (a route of the web client), the web client's
	// scripts, and the share API the page calls.
	"audiobookshelf-share": {Name: "audiobookshelf-share", OptIn: true, Paths: []PresetPath{
		appPath("/audiobookshelf/share/",
			absServer+"client/components/modals/ShareModal.vue: share links are <origin>/audiobookshelf/share/<slug>",
			absServer+"server/Server.js: /share/:slug serves the web client"),
		appPath("/audiobookshelf/_nuxt/",
			absServer+"client/nuxt.config.js: the web client's scripts and styles, below the router base"),
		appPath("/audiobookshelf/public/share/",
			absServer+"client/pages/share/_slug.vue: the share's data, cover, tracks and download",
			absServer+"server/routers/PublicRouter.js: /share/:slug"),
	}},

	// Podcast feeds for podcast apps, which fetch them without a login.
	"audiobookshelf-feed": {Name: "audiobookshelf-feed", OptIn: true, Paths: alsoUnder("/audiobookshelf",
		appPath("/feed/",
			absServer+"server/Server.js: /feed/:slug, its cover and episodes",
			absServer+"server/models/Feed.js: feed URLs are <server address>/feed/<slug>"),
	)},

	"jellyfin": {Name: "jellyfin", Paths: []PresetPath{
		// Jellyfin's API lives at the root beside the web client (/web/);
		// the native apps sign in there with their own tokens.
		appPath("/System/Info/Public",
			jfSDK+"jellyfin-core/src/commonMain/kotlin/org/jellyfin/sdk/discovery/RecommendedServerDiscovery.kt: every SDK app's server check (Android TV; the Android app's setup/ConnectionHelper.kt)",
			jfTV+"auth/repository/ServerRepository.kt: Android TV",
			jfSwift+"Shared/Services/ServerConnectionManager.swift: Swiftfin",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: get_public_info"),
		appPath("/System/Info",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: validate_authentication_token"),
		appPath("/System/Configuration/encoding",
			jfKodi+"jellyfin_kodi/helper/playutils.py: get_transcode_settings"),
		appPath("/Users/",
			jfTV+"auth/repository/AuthenticationRepository.kt: AuthenticateByName, AuthenticateWithQuickConnect, Users/Me",
			jfTV+"auth/repository/ServerUserRepository.kt: Users/Public",
			jfSwift+"Shared/ViewModels/UserSignInViewModel.swift: Users/Public",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: Users/{UserId}/Items and the rest of the per-user API"),
		appPath("/UserViews",
			jfTV+"data/repository/UserViewsRepository.kt",
			jfPhone+"sessionbrowser/page/RootLibraryPage.kt: Android Auto's library",
			jfSwift+"Shared/Objects/Libraries/UserViewLibrary.swift"),
		appPath("/UserItems/",
			jfTV+"integration/LeanbackChannelWorker.kt: UserItems/Resume",
			jfSwift+"Shared/Objects/Libraries/ResumeItemsLibrary.swift"),
		appPath("/UserFavoriteItems/",
			jfTV+"data/repository/ItemMutationRepository.kt",
			jfSwift+"Shared/Extensions/JellyfinAPI/BaseItemDto/BaseItemDto+Poster.swift"),
		appPath("/UserPlayedItems/",
			jfTV+"data/repository/ItemMutationRepository.kt",
			jfPhone+"player/PlayerViewModel.kt"),
		appPath("/UserImage",
			jfTV+"util/apiclient/JellyfinImage.kt: user avatars (ImageApi.getUserImageUrl)",
			jfSwift+"Shared/SwiftfinStore/SwiftinStore+UserState.swift: user avatars"),
		appPath("/Items/",
			jfTV+"integration/MediaContentProvider.kt: Items, images, playback info",
			jfPhone+"downloads/DownloadManager.kt",
			jfSwift+"Shared/Extensions/JellyfinAPI/BaseItemDto/BaseItemDto.swift",
			jfKodi+"jellyfin_kodi/jellyfin/api.py"),
		appPath("/Videos/",
			jfTV+"ui/playback/ExternalPlayerActivity.kt: streams and subtitles",
			jfPhone+"player/queue/QueueManager.kt",
			jfSwift+"Shared/Objects/MediaPlayerManager/MediaPlayerItem/MediaPlayerItem+Build.swift",
			jfKodi+"jellyfin_kodi/helper/playutils.py"),
		appPath("/Audio/",
			"jellyfin/jellyfin-androidtv playback/jellyfin/src/main/kotlin/mediastream/JellyfinMediaStreamResolver.kt",
			jfPhone+"sessionbrowser/SessionBrowserCallback.kt: Android Auto's music",
			jfKodi+"jellyfin_kodi/helper/playutils.py"),
		appPath("/Shows/",
			jfTV+"ui/itemdetail/FullDetailsFragmentHelper.kt",
			jfSwift+"Shared/Objects/Libraries/NextUpLibrary.swift",
			jfKodi+"jellyfin_kodi/downloader.py"),
		appPath("/Artists/",
			jfTV+"ui/itemhandling/ItemRowAdapterHelper.kt",
			jfPhone+"sessionbrowser/page/ArtistsLibraryPage.kt",
			jfKodi+"jellyfin_kodi/downloader.py"),
		appPath("/Persons/",
			jfSwift+"Shared/Objects/Libraries/PeopleLibrary.swift"),
		appPath("/Genres/",
			jfTV+"ui/browsing/ByGenreFragment.kt",
			jfPhone+"sessionbrowser/page/GenresLibraryPage.kt",
			jfSwift+"Shared/Objects/Libraries/GenresLibrary.swift"),
		appPath("/Playlists/",
			jfTV+"ui/itemdetail/ItemListFragmentHelper.kt"),
		appPath("/LiveTv/",
			jfTV+"ui/livetv/TvManagerHelper.kt",
			jfSwift+"Shared/Objects/Libraries/ChannelScheduleLibrary.swift",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: LiveTv/Channels"),
		appPath("/LiveStreams/",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: LiveStreams/Open and LiveStreams/Close for live TV"),
		appPath("/Sessions/",
			jfTV+"util/apiclient/ReportingHelper.kt: playback reports",
			jfPhone+"player/PlayerViewModel.kt",
			jfSwift+"Shared/Objects/MediaPlayerManager/MediaProgressObserver.swift",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: Sessions/Capabilities/Full"),
		appPath("/Playback/",
			jfSwift+"Shared/Objects/MediaPlayerManager/MediaPlayerManager.swift: Playback/BitrateTest"),
		appPath("/MediaSegments/",
			jfTV+"ui/playback/segment/MediaSegmentRepository.kt: skip intro",
			jfPhone+"player/mediasegments/MediaSegmentRepository.kt",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: get_media_segments"),
		appPath("/DisplayPreferences/",
			jfTV+"preference/store/DisplayPreferencesStore.kt",
			jfPhone+"player/PlayerViewModel.kt"),
		appPath("/Localization/",
			jfSwift+"Shared/Views/SettingsView/VideoPlayerSettingsView.swift: the language pickers (Shared/Objects/Libraries/CultureLibrary.swift)"),
		appPath("/Branding/",
			jfTV+"auth/repository/ServerRepository.kt: Branding/Configuration (the login disclaimer)",
			jfTV+"data/service/BackgroundService.kt: Branding/Splashscreen",
			jfSwift+"Shared/ViewModels/UserSignInViewModel.swift"),
		appPath("/QuickConnect/",
			jfTV+"ui/startup/UserLoginViewModel.kt: Initiate and Connect",
			jfSwift+"Shared/ViewModels/QuickConnectAuthorizeViewModel.swift: Authorize"),
		appPath("/ClientLog/",
			jfTV+"auth/repository/SessionRepository.kt"),
		appPath("/socket",
			jfSDK+"jellyfin-api/src/commonMain/kotlin/org/jellyfin/sdk/api/sockets/DefaultSocketApi.kt: live updates and remote control (Android TV's data/eventhandling/SocketHandler.kt)",
			jfKodi+"jellyfin_kodi/jellyfin/ws_client.py"),
		appPath("/Jellyfin.Plugin.KodiSyncQueue/",
			jfKodi+"jellyfin_kodi/jellyfin/api.py: the Kodi Sync Queue plugin's GetItems and GetServerDateTime"),

		// Closed: what no app needs and the internet must not reach. Behind
		// gatehouse every request reaches Jellyfin from loopback, which it
		// counts as the local network unless KnownProxies names gatehouse
		// (docs/apps.md), so the loopback exceptions matter most.
		closedPath("/System/Restart",
			jfServer+"Jellyfin.Api/Controllers/SystemController.cs: Policies.LocalAccessOrRequiresElevation",
			jfServer+"Jellyfin.Api/Auth/LocalAccessOrRequiresElevationPolicy/LocalAccessOrRequiresElevationHandler.cs: any local-network caller may restart the server, without signing in"),
		closedPath("/System/Shutdown", jfServer+"Jellyfin.Api/Controllers/SystemController.cs"+jfAdminOnly),
		closedPath("/System/Logs", jfServer+"Jellyfin.Api/Controllers/SystemController.cs"+jfAdminOnly),
		closedPath("/System/Info/Storage", jfServer+"Jellyfin.Api/Controllers/SystemController.cs"+jfAdminOnly),
		closedPath("/System/Configuration", jfServer+"Jellyfin.Api/Controllers/ConfigurationController.cs: the server's settings; POST needs RequiresElevation, only Kodi reads a part (encoding, above)"),
		closedPath("/System/ActivityLog", jfServer+"Jellyfin.Api/Controllers/ActivityLogController.cs"+jfAdminOnly),
		closedPath("/Startup/",
			jfServer+"Jellyfin.Api/Controllers/StartupController.cs: Policies.FirstTimeSetupOrElevated",
			jfServer+"Jellyfin.Api/Auth/FirstTimeSetupPolicy/FirstTimeSetupHandler.cs: anyone may run the setup wizard (and make the admin) until it is done"),
		closedPath("/Environment/", jfServer+"Jellyfin.Api/Controllers/EnvironmentController.cs: browses the server's file system; FirstTimeSetupOrElevated"),
		closedPath("/Library/",
			jfServer+"Jellyfin.Api/Controllers/LibraryStructureController.cs: libraries and their folders; FirstTimeSetupOrElevated",
			jfServer+"Jellyfin.Api/Controllers/LibraryController.cs: Library/Refresh, MediaFolders, PhysicalPaths"+jfAdminOnly),
		closedPath("/Users/New", jfServer+"Jellyfin.Api/Controllers/UserController.cs: CreateUserByName"+jfAdminOnly),
		closedPath("/Users/ForgotPassword",
			jfServer+"Jellyfin.Api/Controllers/UserController.cs: starts a PIN reset only for callers it counts as local — every caller behind gatehouse without KnownProxies",
			jfServer+"Jellyfin.Server.Implementations/Users/DefaultPasswordResetProvider.cs: redeeming the PIN (ForgotPassword/Pin, anonymous) sets the password to it"),
		closedPath("/Auth/", jfServer+"Jellyfin.Api/Controllers/ApiKeyController.cs: API keys, which are unrestricted"+jfAdminOnly),
		closedPath("/Plugins/", jfServer+"Jellyfin.Api/Controllers/PluginsController.cs"+jfAdminOnly),
		closedPath("/Packages/", jfServer+"Jellyfin.Api/Controllers/PackageController.cs: installs plugins"+jfAdminOnly),
		closedPath("/Repositories", jfServer+"Jellyfin.Api/Controllers/PackageController.cs: plugin repositories"+jfAdminOnly),
		closedPath("/ScheduledTasks/", jfServer+"Jellyfin.Api/Controllers/ScheduledTasksController.cs"+jfAdminOnly),
		closedPath("/Devices/", jfServer+"Jellyfin.Api/Controllers/DevicesController.cs"+jfAdminOnly),
		closedPath("/Backup/", jfServer+"Jellyfin.Api/Controllers/BackupController.cs: backups and restore"+jfAdminOnly),
	}},
}

// PresetNames lists the presets, sorted, for messages.
func PresetNames() []string {
	var out []string
	for n := range Presets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func presetList() string { return strings.Join(PresetNames(), ", ") }

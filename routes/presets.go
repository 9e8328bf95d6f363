package routes

import (
	"slices"
	"strings"
)

// A preset carves the paths that a service's phone, TV and desktop apps
// use out of a family route on the Cloudflare door, as `app` paths: those
// apps cannot follow a sign-in redirect and carry the service's own
// credentials instead. `preset = "immich"` in a route expands to these
// path rules when the file is read (`gatehouse routes` shows them); a path
// rule written in the file for the same prefix replaces the preset's.
// README "Presets" says why each path is there.
type Preset struct {
	Name  string
	Paths []string
}

// Presets are the shipped presets by name.
var Presets = map[string]Preset{
	"immich": {Name: "immich", Paths: []string{
		"/api/",               // the mobile app's whole API (it logs in there itself)
		"/.well-known/immich", // the app's discovery of the API address
		"/share/",             // shared links, for people without an account
		"/s/",                 // shared links with a custom slug
		"/_app/",              // the web app's static files that a shared link's page loads
		"/custom.css",         // the admin's theme, loaded by shared-link pages
	}},
	"nextcloud": {Name: "nextcloud", Paths: []string{
		"/status.php",             // clients check the server
		"/remote.php/",            // WebDAV files, CalDAV and CardDAV
		"/public.php/",            // public shares over WebDAV
		"/ocs/",                   // OCS API: capabilities, shares, notifications
		"/index.php/login/v2",     // login flow v2: start and poll (the browser part is Nextcloud's own login)
		"/login/v2",               // the same without index.php (pretty URLs)
		"/index.php/avatar/",      // avatars in the apps
		"/index.php/core/preview", // thumbnails
		"/index.php/core/preview.png",
		"/.well-known/caldav", // DAV clients' discovery, redirects to /remote.php/dav
		"/.well-known/carddav",
	}},
	"navidrome": {Name: "navidrome", Paths: []string{
		"/rest/", // the Subsonic API every music app speaks
	}},
	"audiobookshelf": {Name: "audiobookshelf", Paths: []string{
		"/api/",  // the app's API
		"/login", // the app's sign-in
		"/logout",
		"/ping",       // server check when adding a server
		"/status",     // server state before sign-in
		"/socket.io/", // live progress sync
		"/hls/",       // streaming
		"/public/",    // shared items
	}},
	"jellyfin": {Name: "jellyfin", Paths: []string{
		// Jellyfin's API lives at the root beside the web client (/web/);
		// every app (TV, phone, Kodi, Infuse…) signs in with its own token.
		"/System/", "/Users/", "/UserViews", "/UserItems/", "/UserFavoriteItems/", "/UserPlayedItems/",
		"/Items/", "/Videos/", "/Audio/", "/Shows/", "/Movies/", "/Trailers/", "/Artists/", "/Persons/",
		"/Genres/", "/MusicGenres/", "/Studios/", "/Years/", "/Playlists/", "/Collections/",
		"/Library/", "/LiveTv/", "/Search/", "/Sessions/", "/SyncPlay/", "/Playback/", "/MediaSegments/",
		"/DisplayPreferences/", "/Localization/", "/Branding/", "/QuickConnect/", "/ClientLog/",
		"/socket", "/GetUtcTime",
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

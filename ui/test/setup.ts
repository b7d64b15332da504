// Runs before every test file (vite.config.ts `test.setupFiles`). Dates and times are shown in
// the system's locale by the app; the tests fix the locale so that what they assert does not
// depend on the machine's LANG. Tests that depend on "now" fix it themselves (fake Date).
import { setDisplayLocale } from "../src/lib/messages";

setDisplayLocale("en-GB");

export { x } from "@klpsim/arm64";

// platform_client is filled by the platform-sync work (issue #3); this keeps the library
// non-empty until then.
namespace dinodia::platform_client {
int placeholder_symbol() { return 0; }
}  // namespace dinodia::platform_client

// TEMPORARY (being replaced group by group): empty tables so the addon links meanwhile.
#include "method_tables.h"

namespace p11 {
void AddObjectMethods(MethodTable&) {}
void AddCipherMethods(MethodTable&) {}
void AddDigestMethods(MethodTable&) {}
void AddVerifyMethods(MethodTable&) {}
void AddDualMethods(MethodTable&) {}
void AddRandomMethods(MethodTable&) {}
}  // namespace p11

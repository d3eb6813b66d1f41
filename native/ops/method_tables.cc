#include "method_tables.h"

namespace p11 {

const MethodTable& AllMethods() {
  static const MethodTable table = [] {
    MethodTable all;
    AddGeneralMethods(all);
    AddSlotMethods(all);
    AddSessionMethods(all);
    AddObjectMethods(all);
    AddCipherMethods(all);
    AddDigestMethods(all);
    AddSignMethods(all);
    AddVerifyMethods(all);
    AddDualMethods(all);
    AddKeyMethods(all);
    AddRandomMethods(all);
    return all;
  }();
  return table;
}

}  // namespace p11

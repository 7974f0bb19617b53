// llgrad program 0000000000000000 (llgrad_0000000000000000) · stage backward
// inputs: in0 2x2xf32 · scalars: p0 f64, p1 i64, p2 i64, p3 i64
// outputs: 2x2xf32, f32, 2x2xf32, 2x2xf32
// compiled in <t> ms
#id0 = affine_map<() -> ()>
#scalar2 = affine_map<(d0, d1) -> ()>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#map0 = affine_map<(d0, d1) -> (0, 0)>
module {
  func.func @backward(%p0: f64, %p1: i64, %p2: i64, %fwd0: tensor<2x2xf32>) -> tensor<2x2xf32> {
    // tutorial.py:7  out.backward()
    %e0 = tensor.empty() : tensor<f32> loc(#loc7)
    %0 = linalg.generic {indexing_maps = [#id0], iterator_types = [], llgrad.backward} outs(%e0 : tensor<f32>) {
    ^bb0(%out: f32):
      %t0 = arith.truncf %p0 : f64 to f32 loc(#loc7)
      linalg.yield %t0 : f32 loc(#loc7)
    } -> tensor<f32> loc(#loc7)
    %e1 = tensor.empty() : tensor<1x1xf32> loc(#loc7)
    %1 = linalg.generic {indexing_maps = [#scalar2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%0 : tensor<f32>) outs(%e1 : tensor<1x1xf32>) {
    ^bb0(%a0: f32, %out: f32):
      linalg.yield %a0 : f32 loc(#loc7)
    } -> tensor<1x1xf32> loc(#loc7)
    %e2 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %2 = linalg.generic {indexing_maps = [#map0, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%1 : tensor<1x1xf32>) outs(%e2 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      linalg.yield %a0 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e3 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %3 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%2 : tensor<2x2xf32>) outs(%e3 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.sitofp %p1 : i64 to f32 loc(#loc7)
      %t1 = arith.divf %a0, %t0 : f32 loc(#loc7)
      linalg.yield %t1 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e4 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %4 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%3 : tensor<2x2xf32>) outs(%e4 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.sitofp %p2 : i64 to f32 loc(#loc7)
      %t1 = arith.mulf %a0, %t0 : f32 loc(#loc7)
      linalg.yield %t1 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e5 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %5 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%4, %fwd0 : tensor<2x2xf32>, tensor<2x2xf32>) outs(%e5 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %a1: f32, %out: f32):
      %t0 = arith.mulf %a0, %a1 : f32 loc(#loc7)
      linalg.yield %t0 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e6 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %6 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%4, %fwd0 : tensor<2x2xf32>, tensor<2x2xf32>) outs(%e6 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %a1: f32, %out: f32):
      %t0 = arith.mulf %a0, %a1 : f32 loc(#loc7)
      linalg.yield %t0 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e7 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %7 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%5, %6 : tensor<2x2xf32>, tensor<2x2xf32>) outs(%e7 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %a1: f32, %out: f32):
      %t0 = arith.addf %a0, %a1 : f32 loc(#loc7)
      linalg.yield %t0 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    return %7 : tensor<2x2xf32>
  }
}
#loc7 = loc("tutorial.py":7:1)


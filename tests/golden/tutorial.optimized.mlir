// llgrad program 0000000000000000 (llgrad_0000000000000000) · stage optimized
// inputs: in0 2x2xf32 · scalars: p0 f64, p1 i64, p2 i64, p3 i64
// outputs: 2x2xf32, f32, 2x2xf32, 2x2xf32
// compiled in <t> ms
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#scalar2 = affine_map<(d0, d1) -> ()>
#id0 = affine_map<() -> ()>
#map0 = affine_map<(d0, d1) -> (0, 0)>
module {
  func.func @llgrad_0000000000000000(%in0: tensor<2x2xf32>, %p0: f64, %p1: i64, %p2: i64, %p3: i64) -> (tensor<2x2xf32>, tensor<f32>, tensor<2x2xf32>, tensor<2x2xf32>) {
    // tutorial.py:4  y = x + 2
    %e0 = tensor.empty() : tensor<2x2xf32> loc(#loc4)
    %0 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%in0 : tensor<2x2xf32>) outs(%e0 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.sitofp %p3 : i64 to f32 loc(#loc4)
      %t1 = arith.addf %a0, %t0 : f32 loc(#loc4)
      linalg.yield %t1 : f32 loc(#loc4)
    } -> tensor<2x2xf32> loc(#loc4)
    // tutorial.py:5  z = y * y * 3
    %e1 = tensor.empty() : tensor<2x2xf32> loc(#loc5)
    %1 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%0, %0 : tensor<2x2xf32>, tensor<2x2xf32>) outs(%e1 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %a1: f32, %out: f32):
      %t0 = arith.mulf %a0, %a1 : f32 loc(#loc5)
      linalg.yield %t0 : f32 loc(#loc5)
    } -> tensor<2x2xf32> loc(#loc5)
    %e2 = tensor.empty() : tensor<2x2xf32> loc(#loc5)
    %2 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%1 : tensor<2x2xf32>) outs(%e2 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.sitofp %p2 : i64 to f32 loc(#loc5)
      %t1 = arith.mulf %a0, %t0 : f32 loc(#loc5)
      linalg.yield %t1 : f32 loc(#loc5)
    } -> tensor<2x2xf32> loc(#loc5)
    // tutorial.py:6  out = z.mean()
    %e3 = tensor.empty() : tensor<f32> loc(#loc6)
    %c3_0 = arith.constant 0.0 : f32 loc(#loc6)
    %f3 = linalg.fill ins(%c3_0 : f32) outs(%e3 : tensor<f32>) -> tensor<f32> loc(#loc6)
    %3 = linalg.generic {indexing_maps = [#id2, #scalar2], iterator_types = ["reduction", "reduction"]} ins(%2 : tensor<2x2xf32>) outs(%f3 : tensor<f32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.addf %out, %a0 fastmath<reassoc,contract> : f32 loc(#loc6)
      linalg.yield %t0 : f32 loc(#loc6)
    } -> tensor<f32> loc(#loc6)
    %e4 = tensor.empty() : tensor<f32> loc(#loc6)
    %4 = linalg.generic {indexing_maps = [#id0, #id0], iterator_types = []} ins(%3 : tensor<f32>) outs(%e4 : tensor<f32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.constant 4.0 : f32 loc(#loc6)
      %t1 = arith.divf %a0, %t0 : f32 loc(#loc6)
      linalg.yield %t1 : f32 loc(#loc6)
    } -> tensor<f32> loc(#loc6)
    // tutorial.py:7  out.backward()
    %e5 = tensor.empty() : tensor<f32> loc(#loc7)
    %5 = linalg.generic {indexing_maps = [#id0], iterator_types = [], llgrad.backward} outs(%e5 : tensor<f32>) {
    ^bb0(%out: f32):
      %t0 = arith.truncf %p0 : f64 to f32 loc(#loc7)
      linalg.yield %t0 : f32 loc(#loc7)
    } -> tensor<f32> loc(#loc7)
    %e6 = tensor.empty() : tensor<1x1xf32> loc(#loc7)
    %6 = linalg.generic {indexing_maps = [#scalar2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%5 : tensor<f32>) outs(%e6 : tensor<1x1xf32>) {
    ^bb0(%a0: f32, %out: f32):
      linalg.yield %a0 : f32 loc(#loc7)
    } -> tensor<1x1xf32> loc(#loc7)
    %e7 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %7 = linalg.generic {indexing_maps = [#map0, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%6 : tensor<1x1xf32>) outs(%e7 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      linalg.yield %a0 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e8 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %8 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%7 : tensor<2x2xf32>) outs(%e8 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.sitofp %p1 : i64 to f32 loc(#loc7)
      %t1 = arith.divf %a0, %t0 : f32 loc(#loc7)
      linalg.yield %t1 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e9 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %9 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%8 : tensor<2x2xf32>) outs(%e9 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %out: f32):
      %t0 = arith.sitofp %p2 : i64 to f32 loc(#loc7)
      %t1 = arith.mulf %a0, %t0 : f32 loc(#loc7)
      linalg.yield %t1 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e10 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %10 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%9, %0 : tensor<2x2xf32>, tensor<2x2xf32>) outs(%e10 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %a1: f32, %out: f32):
      %t0 = arith.mulf %a0, %a1 : f32 loc(#loc7)
      linalg.yield %t0 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    %e11 = tensor.empty() : tensor<2x2xf32> loc(#loc7)
    %11 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"], llgrad.backward} ins(%10, %10 : tensor<2x2xf32>, tensor<2x2xf32>) outs(%e11 : tensor<2x2xf32>) {
    ^bb0(%a0: f32, %a1: f32, %out: f32):
      %t0 = arith.addf %a0, %a1 : f32 loc(#loc7)
      linalg.yield %t0 : f32 loc(#loc7)
    } -> tensor<2x2xf32> loc(#loc7)
    return %11, %4, %0, %2 : tensor<2x2xf32>, tensor<f32>, tensor<2x2xf32>, tensor<2x2xf32>
  }
}
#loc4 = loc("tutorial.py":4:5)
#loc5 = loc("tutorial.py":5:5)
#loc6 = loc("tutorial.py":6:7)
#loc7 = loc("tutorial.py":7:1)


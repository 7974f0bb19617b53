// llgrad program 0000000000000000 (llgrad_0000000000000000) · stage kernels
// inputs: in0 2x2xf32 · scalars: p0 f64, p1 i64, p2 i64, p3 i64
// outputs: 2x2xf32, f32, 2x2xf32, 2x2xf32
// compiled in <t> ms
module {
  func.func private @fused_add_mul_sum_div_2x2(%in0: memref<4xf32>, %out3: memref<4xf32>, %out1: memref<4xf32>, %out4: memref<4xf32>, %out2: memref<1xf32>, %params: memref<4xi64>) {
    %acc0 = memref.alloca() : memref<f32>
    %cst = arith.constant 0.0 : f32
    %c0 = arith.constant 0 : index
    %c2 = arith.constant 2 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %cst1 = arith.constant 4.0 : f32
    memref.store %cst, %acc0[] : memref<f32>
    scf.for %i0 = %c0 to %c2 step %c1 {  // reduce
      scf.for %i1 = %c0 to %c2 step %c1 {  // reduce
        %v0 = arith.muli %i0, %c2 : index
        %v1 = arith.addi %v0, %i1 : index
        %v2 = memref.load %in0[%v1] : memref<4xf32>
        %v3 = memref.load %params[%c3] : memref<4xi64>
        %v4 = arith.sitofp %v3 : i64 to f32
        %v5 = arith.addf %v2, %v4 : f32
        %v6 = arith.mulf %v5, %v5 : f32
        %v7 = memref.load %params[%c2] : memref<4xi64>
        %v8 = arith.sitofp %v7 : i64 to f32
        %v9 = arith.mulf %v6, %v8 : f32
        %v10 = memref.load %acc0[] : memref<f32>
        %v11 = arith.addf %v10, %v9 fastmath<reassoc,contract> : f32
        memref.store %v11, %acc0[] : memref<f32>
        memref.store %v5, %out3[%v1] : memref<4xf32>
        %v12 = memref.load %params[%c0] : memref<4xi64>
        %v13 = arith.bitcast %v12 : i64 to f64
        %v14 = arith.truncf %v13 : f64 to f32
        %v15 = memref.load %params[%c1] : memref<4xi64>
        %v16 = arith.sitofp %v15 : i64 to f32
        %v17 = arith.divf %v14, %v16 : f32
        %v18 = arith.sitofp %v7 : i64 to f32
        %v19 = arith.mulf %v17, %v18 : f32
        %v20 = arith.mulf %v19, %v5 : f32
        %v21 = arith.addf %v20, %v20 : f32
        memref.store %v21, %out1[%v1] : memref<4xf32>
        memref.store %v9, %out4[%v1] : memref<4xf32>
      }
    }
    %v22 = memref.load %acc0[] : memref<f32>
    %v23 = arith.divf %v22, %cst1 : f32
    memref.store %v23, %out2[%c0] : memref<1xf32>
    return
  }
  func.func @llgrad_0000000000000000(%in0: memref<4xf32>, %out1: memref<4xf32>, %out2: memref<1xf32>, %out3: memref<4xf32>, %out4: memref<4xf32>, %params: memref<4xi64>) {
    func.call @fused_add_mul_sum_div_2x2(%in0, %out3, %out1, %out4, %out2, %params) : (memref<4xf32>, memref<4xf32>, memref<4xf32>, memref<4xf32>, memref<1xf32>, memref<4xi64>) -> ()
    return
  }
}

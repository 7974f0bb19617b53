"""The code cells of the five seed notebooks (../shared/seeds), verbatim but for
IPython magics. They run under `import torch` mapped to llgrad (see notebook.py)."""

NOTEBOOKS = {
    "000_autograd_variable": [
        "import torch\nfrom torch.autograd import Variable",
        "x_data = torch.ones(2,2)\nx = Variable(x_data, requires_grad=True)\nprint(x)\nprint(x.grad)",
        " \ny = x\nprint(y)\nprint(y.grad)\nprint(y.requires_grad)",
        "z = y * y * 3\nprint(z)",
        "out = z.mean()\nprint(out)",
        "out.backward()",
        "print(x.grad)\nprint(y.grad)\nprint(z.grad)",
    ],
    "001_autograd_tensor": [
        "import torch\nimport numpy as np",
        "x = torch.ones(2, 2, requires_grad=True)\nprint(x)",
        "y = x + 2\nprint(y)",
        "print(y.grad_fn)",
        "z = y * y * 3\nout = z.mean()\n\nprint(z, out)",
        "out.backward()",
        "print(x.grad)",
        "a = torch.tensor([3.0, 2.0], requires_grad=True)\nb = torch.tensor([4.0, 7.0])\n"
        "ab_sum = a + b\nprint(ab_sum)\n\nab_res = (ab_sum*8).sum()\nprint(ab_res)",
        "# Now calculate the gradient: d`ab_res`/d a\nab_res.backward()\n\nprint(a.grad)",
        "# Create a tensor and set requires_grad=True to track computation with it\n"
        "x = torch.ones(2,2, requires_grad=True)\nprint(x)",
        "y = 3*x + 7\nz = 2*y**2\nw = z.mean()\n\nprint(z)\nprint(w)",
        "# Backprop\nw.backward()\n\n# Gradient w.r.t x\nx.grad",
    ],
    "002_auto_grad_pdf": [
        "import torch\nfrom torch.autograd import Variable",
        "x = Variable(torch.ones(2, 2), requires_grad=True)\nprint(x)",
        "y = x + 2\nprint(y)",
        "z = y * y * 3\nout = z.mean()\nprint(z, out)",
        "out.backward()",
        "print(x.grad)",
        "x = torch.randn(3)\nx = Variable(x, requires_grad=True)\n\ny = x * 2\n"
        "while y.data.norm() < 1000:\n    y = y * 2\n\nprint(y)",
        "gradients = torch.FloatTensor([0.1, 1.0, 0.0001])\ny.backward(gradients)\nprint(x.grad)",
    ],
    "003_autograd_tutorial": [
        "import torch\nfrom torch.autograd import Variable",
        "x = Variable(torch.Tensor([[1, 2], [3, 4]]), requires_grad=True)\nprint(x)",
        "y = x - 2\nprint(y)",
        "print(y.grad_fn)",
        "print(x.grad_fn)",
        "y.grad_fn",
        "y.grad_fn.next_functions[0][0]",
        "y.grad_fn.next_functions[0][0].variable",
        "z = y * y * 3\nout = z.mean()\n\nprint(z, out)",
        "out.backward()",
        "print(x.grad)",
        "# Dynamic graphs!\nx = torch.randn(3)\nx = Variable(x, requires_grad=True)\n\ny = x * 2\n"
        "while y.data.norm() < 1000:\n    y = y * 2\n\nprint(y)",
        "gradients = torch.FloatTensor([0.1, 1.0, 0.0001])\ny.backward(gradients)\n\nprint(x.grad)",
        "d = 3\nt = torch.arange(1, d + 1)",
        "t_v = Variable(t, requires_grad=True)\ntheta = Variable(torch.ones(d), requires_grad=True)\n"
        "s = theta @ t_v\ns.backward()\nprint(t_v.grad, theta.grad)",
        "t_v = Variable(t)\ntheta = Variable(torch.ones(d), requires_grad=True)\ns = theta @ t_v\n"
        "s.backward()\nprint(t_v.grad, theta.grad, sep='\\n')",
        "t_v = Variable(t, volatile=True)\ntheta = Variable(torch.ones(d), requires_grad=True)\n"
        "s = theta @ t_v\ns.backward()\nprint(t_v.grad, theta.grad, sep='\\n')",
    ],
    "004_d2l_autograd": [
        "import torch",
        "x = torch.arange(4.0)\nx",
        "x.requires_grad_(True)  # Same as `x = torch.arange(4.0, requires_grad=True)`\n"
        "x.grad  # The default value is None",
        "y = 2 * torch.dot(x, x)\ny",
        "y.backward()\nx.grad",
        "x.grad == 4 * x  #gradient of x",
        "# PyTorch accumulates the gradient in default, we need to clear the previous\n# values\n"
        "x.grad.zero_()\ny = x.sum()\ny.backward()\nx.grad",
        "x.sum()",
        "x.grad.zero_()\ny = x * x\n# y.backward(torch.ones(len(x))) equivalent to the below\n"
        "y.sum().backward()\nx.grad",
        "x.grad.zero_()\ny = x * x\nu = y.detach()\nz = u * x\n\nz.sum().backward()\nx.grad == u",
        "x.grad.zero_()\ny.sum().backward()\nx.grad == 2 * x",
        "def f(a):\n    b = a * 2\n    while b.norm() < 10:\n        b = b * 2\n    if b.sum() > 0:\n"
        "        c = b\n    else:\n        c = 100 * b\n    return c",
        "a = torch.randn(size=(), requires_grad=True)\nprint (a)\nd = f(a)\nd.backward()\nd",
        "a.grad == d / a",
    ],
}
